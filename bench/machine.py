"""The machine a run happened on, and how its cores are split between server and load.

Results are only comparable with the hardware, versions and commit they came
from, so every run records them beside its numbers.
"""

from __future__ import annotations

import datetime
import os
import platform
import shutil
import subprocess
from importlib import metadata
from pathlib import Path

from targets import LITELLM_BIN, ROOT


def core_layout() -> tuple[int | None, int | None]:
    """(load core, server core): the first two CPUs this process may use, or None twice."""
    cores = sorted(os.sched_getaffinity(0))
    return (cores[0], cores[1]) if len(cores) >= 2 else (None, None)


def describe() -> dict[str, object]:
    """CPU, versions of everything measured, commit and date."""

    def version(package: str) -> str:
        try:
            return metadata.version(package)
        except metadata.PackageNotFoundError:
            return "absent"

    litellm_version = "absent"
    for site in LITELLM_BIN.parent.glob("lib/python*/site-packages/litellm-*.dist-info"):
        litellm_version = site.name.removeprefix("litellm-").removesuffix(".dist-info")
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor() or "unknown",
    )
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    return {
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "commit": commit.stdout.strip() or "uncommitted",
        "versions": {
            p: version(p) for p in ("llm-gateway", "fastapi", "uvicorn", "aiohttp", "httpx2", "uvloop")
        }
        | {"litellm": litellm_version},
        "wrk": shutil.which("wrk") is not None,
    }
