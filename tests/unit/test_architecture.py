"""The layering the folders promise, enforced: imports point down only, modules stay small and named
by their job, and importing a module does nothing.

    api → services → routing → providers → core        services → store
    observability: below everything but core; never imported by providers
    app, cli, cli_admin, main, runtime, reloader: the composition root, free to import any layer
    (api may use runtime and reloader)
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

import llm_gateway

PACKAGE = "llm_gateway"
SRC = Path(llm_gateway.__file__).resolve().parent
ROOT_MODULES = {"app", "cli", "cli_admin", "main", "runtime", "reloader", "__init__"}
MAX_LINES = 500

# What each layer may import from llm_gateway (besides itself and the package root).
ALLOWED: dict[str, set[str]] = {
    "core": set(),
    "providers": {"core"},
    "observability": {"core"},
    "routing": {"providers", "core", "observability"},
    "store": {"core", "observability"},
    "services": {"routing", "providers", "core", "store", "observability"},
    "api": {"services", "routing", "providers", "core", "store", "observability", "runtime", "reloader"},
}
WEB_FRAMEWORKS = {"fastapi", "starlette", "uvicorn"}
# Third-party packages a layer must never import.
FORBIDDEN_THIRD_PARTY: dict[str, set[str]] = {
    "core": {*WEB_FRAMEWORKS, "aiohttp", "httpx", "httpx2"},
    "providers": WEB_FRAMEWORKS,
    "routing": WEB_FRAMEWORKS,
    "services": WEB_FRAMEWORKS,
}
VAGUE_NAMES = {"util", "utils", "helper", "helpers", "common", "misc"}


@dataclass(frozen=True)
class Module:
    name: str  # dotted, e.g. llm_gateway.api.simple
    path: Path

    @property
    def parts(self) -> list[str]:
        return self.name.split(".")

    @property
    def layer(self) -> str:
        """`api`, `core`, ... or the root module's own name (`app`, `cli`, ...)."""
        return self.parts[1] if len(self.parts) > 1 else "__init__"

    @property
    def is_package(self) -> bool:
        return self.path.name == "__init__.py"


def modules() -> list[Module]:
    found = []
    for path in sorted(SRC.rglob("*.py")):
        relative = path.relative_to(SRC).with_suffix("")
        parts = [PACKAGE, *relative.parts]
        if parts[-1] == "__init__" and len(parts) > 2:
            parts.pop()
        found.append(Module(".".join(parts) if parts != [PACKAGE, "__init__"] else PACKAGE, path))
    return found


MODULES = modules()
MODULE_NAMES = {m.name for m in MODULES}


def imported_names(module: Module) -> list[tuple[int, str]]:
    """Every module `module` imports (absolute, dotted), with its line; TYPE_CHECKING ones too."""
    tree = ast.parse(module.path.read_text(encoding="utf-8"), str(module.path))
    names: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package = module.parts if module.is_package else module.parts[:-1]
                anchor = package[: len(package) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            names.append((node.lineno, base))
            # `from llm_gateway.api import simple` imports the module llm_gateway.api.simple.
            names += [
                (node.lineno, f"{base}.{a.name}") for a in node.names if f"{base}.{a.name}" in MODULE_NAMES
            ]
    return names


def target_layer(name: str) -> str:
    parts = name.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def test_every_module_belongs_to_a_known_layer() -> None:
    unknown = sorted(m.name for m in MODULES if m.layer not in ALLOWED and m.layer not in ROOT_MODULES)
    assert not unknown, f"modules outside the known layers (add the layer to this test's rules): {unknown}"


def layer_violations() -> list[str]:
    problems = []
    for module in MODULES:
        if module.layer in ROOT_MODULES:
            continue
        allowed = {module.layer, "__init__", *ALLOWED[module.layer]}
        forbidden = FORBIDDEN_THIRD_PARTY.get(module.layer, set())
        for line, name in imported_names(module):
            where = f"{module.path.relative_to(SRC.parent)}:{line}"
            top = name.split(".")[0]
            if top == PACKAGE:
                if target_layer(name) not in allowed:
                    problems.append(f"{where}: {module.layer} must not import {name}")
            elif top in forbidden:
                problems.append(f"{where}: {module.layer} must not import {top}")
    return problems


def test_imports_point_down_only() -> None:
    problems = layer_violations()
    assert not problems, "layering broken:\n" + "\n".join(problems)


@pytest.mark.parametrize(
    ("layer", "never"),
    [
        ("providers", ["api", "services", "routing", "store", "observability", "runtime", "app"]),
        ("routing", ["api", "services", "store"]),
        ("core", ["api", "services", "routing", "providers", "store", "observability", "runtime"]),
    ],
)
def test_the_rules_themselves_forbid_what_the_style_guide_forbids(layer: str, never: list[str]) -> None:
    """Guard the table above against a well-meant loosening."""
    assert not ALLOWED[layer] & set(never)
    if layer in ("providers", "core"):
        assert {"fastapi", "starlette"} <= FORBIDDEN_THIRD_PARTY[layer]


def test_the_import_scanner_sees_relative_and_nested_imports(tmp_path: Path) -> None:
    source = (
        "from __future__ import annotations\n"
        "from typing import TYPE_CHECKING\n"
        "from . import registry\n"
        "from ..api import simple\n"
        "from .transport import HttpClient\n"
        "if TYPE_CHECKING:\n"
        "    from llm_gateway.store import db\n"
        "def f():\n"
        "    import fastapi\n"
    )
    path = tmp_path / "fake.py"
    path.write_text(source)
    names = {name for _, name in imported_names(Module("llm_gateway.providers.fake", path))}
    assert {
        "llm_gateway.providers",
        "llm_gateway.providers.registry",
        "llm_gateway.api",
        "llm_gateway.api.simple",
        "llm_gateway.providers.transport",
        "llm_gateway.store",
        "fastapi",
    } <= names


def test_no_vague_module_names() -> None:
    vague = [m.name for m in MODULES if set(m.parts[1:]) & VAGUE_NAMES]
    assert not vague, f"name modules by their job, not {sorted(VAGUE_NAMES)}: {vague}"


def test_no_module_over_500_lines() -> None:
    sizes = {
        m.path.relative_to(SRC.parent): len(m.path.read_text(encoding="utf-8").splitlines()) for m in MODULES
    }
    too_big = {str(path): lines for path, lines in sizes.items() if lines > MAX_LINES}
    assert not too_big, f"modules over {MAX_LINES} lines (split them by job): {too_big}"


def test_registry_points_into_providers() -> None:
    from llm_gateway.providers.registry import PROVIDER_TYPES

    for type_name, target in PROVIDER_TYPES.items():
        module, _, cls = target.partition(":")
        assert module.startswith("llm_gateway.providers.") and cls, (type_name, target)


# Run in a fresh interpreter: it imports every module (main excepted: it loads config by
# design) and reports what importing did besides defining things. An audit hook sees
# files opened, sockets, processes, env changes and threads; an event counts only when
# our own module's code caused it directly, not a third-party library's own import.
IMPORT_PROBE = r"""
import importlib, io, json, logging, os, pkgutil, sys, threading
SRC = sys.argv[1]
found = []

def ours_directly():
    frame = sys._getframe(2)  # above hook() and ours_directly()
    while frame is not None:
        filename = frame.f_code.co_filename
        if filename.startswith("<frozen importlib"):
            return None
        if filename.startswith(SRC):
            return f"{os.path.relpath(filename, SRC)}:{frame.f_lineno}"
        frame = frame.f_back
    return None

WATCHED = ("open", "socket.", "subprocess.", "os.system", "os.exec", "os.fork", "os.putenv", "os.unsetenv",
           "thread.start", "os.chdir", "os.mkdir", "os.remove", "os.rename", "signal.")

def hook(event, args):
    if event.startswith(WATCHED):
        where = ours_directly()
        if where is not None:
            found.append(f"{where}: {event} {args[:2]!r}")

_start = threading.Thread.start

def start(self):
    hook("thread.start", (self.name,))
    _start(self)

threading.Thread.start = start
import llm_gateway
handlers = list(logging.getLogger().handlers)
level = logging.getLogger().level
threads = threading.active_count()
env = dict(os.environ)
stdout, stderr = sys.stdout, sys.stderr
sys.stdout, sys.stderr = io.StringIO(), io.StringIO()
sys.addaudithook(hook)
failed = []
for info in pkgutil.walk_packages(llm_gateway.__path__, "llm_gateway."):
    if info.name == "llm_gateway.main":
        continue
    try:
        importlib.import_module(info.name)
    except BaseException as exc:
        failed.append(f"{info.name}: {type(exc).__name__}: {exc}")
printed = sys.stdout.getvalue() + sys.stderr.getvalue()
sys.stdout, sys.stderr = stdout, stderr
if printed:
    found.append(f"printed at import: {printed[:200]!r}")
if logging.getLogger().handlers != handlers or logging.getLogger().level != level:
    found.append("changed the root logger at import")
if threading.active_count() != threads:
    found.append("started a thread at import")
if dict(os.environ) != env:
    found.append("changed os.environ at import")
print(json.dumps({"found": found, "failed": failed, "modules": len(sys.modules)}))
"""


def test_importing_a_module_does_nothing(tmp_path: Path) -> None:
    env = {
        **os.environ,
        # A module that reads config at import would trip over these.
        "LLM_GATEWAY_CONFIG": str(tmp_path / "absent.yaml"),
        "ENVIRONMENT": "not-an-environment",
    }
    result = subprocess.run(
        [sys.executable, "-c", IMPORT_PROBE, str(SRC) + os.sep],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        env=env,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert not report["failed"], "modules that fail to import:\n" + "\n".join(report["failed"])
    assert not report["found"], "import-time side effects:\n" + "\n".join(report["found"])


def test_the_import_probe_catches_a_side_effect(tmp_path: Path) -> None:
    """The probe must see what it is there to see: a module that opens a file at import."""
    package = tmp_path / "src" / "llm_gateway"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "noisy.py").write_text(
        "import threading\nopen(__file__).close()\nthreading.Thread(target=print).start()\nprint('hi')\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", IMPORT_PROBE, str(package) + os.sep],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path / "src",
        env={**os.environ, "PYTHONPATH": str(tmp_path / "src")},
    )
    report = json.loads(result.stdout.strip().splitlines()[-1])
    found = "\n".join(report["found"])
    assert "noisy.py:2: open" in found
    assert "noisy.py:3: thread.start" in found
    assert "printed at import" in found
