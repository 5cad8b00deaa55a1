"""The hash-locked requirement files stay in step with pyproject.toml: every declared
dependency is pinned there, at a version its specifier allows, with hashes."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?==([^\s\\;]+)", re.MULTILINE)


def pins(name: str) -> dict[str, str]:
    text = (ROOT / "requirements" / name).read_text()
    return {canonicalize_name(match[1]): match[2] for match in PIN.finditer(text)}


def declared(extra: str | None) -> list[Requirement]:
    project = PYPROJECT["project"]
    listed = project["dependencies"] if extra is None else project["optional-dependencies"][extra]
    lines = (ROOT / "requirements/build.in").read_text().splitlines()
    build = [line for line in lines if line and line[0] != "#"]
    own = f"{PYPROJECT['project']['name']}["  # the project's own extras, e.g. llm-gateway[tracing]
    return [Requirement(line) for line in [*listed, *build] if not line.startswith(own)]


@pytest.mark.parametrize(
    ("lock", "extras"),
    [("runtime.txt", [None, "tracing"]), ("dev.txt", [None, "dev", "tracing"])],
    ids=["runtime", "dev"],
)
def test_every_declared_dependency_is_pinned_within_its_range(lock: str, extras: list[str | None]) -> None:
    pinned = pins(lock)
    for extra in extras:
        for requirement in declared(extra):
            name = canonicalize_name(requirement.name)
            assert name in pinned, f"{requirement.name} is not in requirements/{lock}: run make lock"
            assert requirement.specifier.contains(pinned[name], prereleases=True), (
                f"requirements/{lock} pins {name}=={pinned[name]}, "
                f"outside {requirement.specifier}: run make lock"
            )


@pytest.mark.parametrize("lock", ["runtime.txt", "dev.txt"])
def test_every_pin_carries_a_hash(lock: str) -> None:
    text = (ROOT / "requirements" / lock).read_text()
    entries = re.split(r"\n(?=[A-Za-z0-9])", text.strip())
    for entry in entries:
        if PIN.match(entry):
            assert "--hash=sha256:" in entry, f"{entry.splitlines()[0]} has no hash in requirements/{lock}"


def test_the_installs_use_the_lock() -> None:
    makefile = (ROOT / "Makefile").read_text()
    assert "--require-hashes -r $(LOCK_RUNTIME)" in makefile
    assert "--require-hashes -r $(LOCK_DEV)" in makefile
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "--require-hashes -r requirements/runtime.txt" in dockerfile
