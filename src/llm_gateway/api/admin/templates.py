"""`/admin/templates`: prompt templates added, listed and deleted at run time.

A version is validated exactly as a config file's (`PromptTemplate`) and never changed once
added (spend rows name it): a new text is a new version, and the newest is what a request
naming no version gets. Names the config defines are the config's: adding to or deleting
one here is a 409. Usable on this instance at once, on others within `auth.refresh_seconds`
(services/stored_templates.py).
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter
from pydantic import BaseModel, Field, model_validator

from llm_gateway.api.admin.schemas import Deleted
from llm_gateway.api.deps import RuntimeDep
from llm_gateway.core.errors import Conflict, NotFound
from llm_gateway.core.policy_config import PromptTemplate, TemplateVersions
from llm_gateway.runtime import Runtime
from llm_gateway.services.stored_templates import StoredTemplates

router = APIRouter(prefix="/templates", tags=["admin: templates"])

TemplateName = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,199}$")]
"""Also how requests name it (`prompt.id`): no spaces, slashes or control characters."""


MAX_TEMPLATE_BYTES = 64 * 1024
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,199}$")
_VERSION = re.compile(r"^[^\ud800-\udfff]{1,64}$")


class TemplateCreate(PromptTemplate):
    """One version of a template: `name`, then the fields a config file's version has."""

    name: TemplateName

    @model_validator(mode="after")
    def _storable(self) -> TemplateCreate:
        """What the database can keep as it was sent: JSON without NUL characters or lone
        surrogates, finite numbers and integers in 64 bits (PostgreSQL refuses the first,
        orjson the surrogates and big integers, and JSON has no infinity)."""
        values = self.model_dump()
        try:
            encoded = orjson.dumps(values)
            json.dumps(values, allow_nan=False)
        except (TypeError, ValueError):
            raise ValueError(
                "must be JSON without lone surrogates, with finite numbers and integers in 64 bits"
            ) from None
        if b"\\u0000" in encoded or len(encoded) > MAX_TEMPLATE_BYTES:
            raise ValueError(f"must be at most {MAX_TEMPLATE_BYTES} bytes of JSON, without NUL characters")
        return self


def known_name(name: str) -> str:
    """A name a template could have; anything else is simply not found (nothing odd reaches SQL)."""
    if not _NAME.fullmatch(name):
        raise NotFound(f"no prompt template named {name!r}")
    return name


class TemplateOut(BaseModel):
    object: Literal["prompt_template"] = "prompt_template"
    name: str
    source: Literal["config", "admin"]
    """Where it is defined: the config file (read-only here) or this API."""
    versions: list[dict[str, Any]]
    """Each version's fields, oldest first: the last is the default."""
    created_at: datetime | None = None
    """When its newest version was added (admin templates only)."""


class TemplateList(BaseModel):
    data: list[TemplateOut]


def _stored(runtime: Runtime) -> StoredTemplates:
    assert runtime.stored_templates is not None, "the runtime always builds its stored templates"
    return runtime.stored_templates


def _configured(runtime: Runtime, name: str) -> TemplateOut | None:
    spec = runtime.config.templates.get(name)
    if spec is None:
        return None
    versions = spec.versions if isinstance(spec, TemplateVersions) else [spec]
    return TemplateOut(name=name, source="config", versions=[v.model_dump(mode="json") for v in versions])


async def _added(stored: StoredTemplates, name: str) -> TemplateOut | None:
    rows = [row for row in await stored.store.all() if row.name == name]
    if not rows:
        return None
    return TemplateOut(
        name=name, source="admin", versions=[row.spec for row in rows], created_at=rows[-1].created_at
    )


def _config_owned(name: str) -> Conflict:
    return Conflict(f"prompt template {name!r} is defined in the config file; change it there", param="name")


@router.post("", status_code=201, response_model=TemplateOut)
async def add_template(body: TemplateCreate, runtime: RuntimeDep) -> TemplateOut:
    """Add a version (409 when the name has it already, or is the config's)."""
    if body.name in runtime.config.templates:
        raise _config_owned(body.name)
    template = PromptTemplate.model_validate(body.model_dump(exclude={"name"}))
    stored = _stored(runtime)
    await stored.add(body.name, template)
    added = await _added(stored, body.name)
    assert added is not None
    return added


@router.get("", response_model=TemplateList)
async def list_templates(runtime: RuntimeDep) -> TemplateList:
    """Every template, the config's first, then those added here (by name)."""
    data = [out for name in runtime.config.templates if (out := _configured(runtime, name)) is not None]
    rows = await _stored(runtime).store.all()
    names = dict.fromkeys(row.name for row in rows if row.name not in runtime.config.templates)
    for name in names:
        versions = [row for row in rows if row.name == name]
        data.append(
            TemplateOut(
                name=name,
                source="admin",
                versions=[row.spec for row in versions],
                created_at=versions[-1].created_at,
            )
        )
    return TemplateList(data=data)


@router.get("/{name}", response_model=TemplateOut)
async def show_template(name: str, runtime: RuntimeDep) -> TemplateOut:
    found = _configured(runtime, name) or await _added(_stored(runtime), known_name(name))
    if found is None:
        raise NotFound(f"no prompt template named {name!r}")
    return found


@router.delete("/{name}", response_model=Deleted)
async def delete_template(name: str, runtime: RuntimeDep) -> Deleted:
    """Delete every version added here; requests naming it then get a 404."""
    return await _delete(runtime, name, None)


@router.delete("/{name}/versions/{version}", response_model=Deleted)
async def delete_template_version(name: str, version: str, runtime: RuntimeDep) -> Deleted:
    """Delete one version; the newest left becomes the default."""
    return await _delete(runtime, name, version)


async def _delete(runtime: Runtime, name: str, version: str | None) -> Deleted:
    known_name(name)
    if version is not None and not (_VERSION.fullmatch(version) and version.isprintable()):
        raise NotFound(f"no prompt template named {name!r} with version {version!r}")
    if name in runtime.config.templates:
        raise _config_owned(name)
    if not await _stored(runtime).delete(name, version):
        what = f"no prompt template named {name!r}" + (f" with version {version!r}" if version else "")
        raise NotFound(what)
    return Deleted(id=name if version is None else f"{name}@{version}", object="prompt_template")
