"""CPU time and peak memory of a server, read from /proc.

A server may fork (a uvicorn supervisor, a LiteLLM helper), so both figures
cover the whole process tree under the PID that the harness started. CPU is
utime + stime, which counts only time spent running: dividing it by the number
of requests served gives a cost per request that does not depend on how busy
the load generator kept the server.
"""

from __future__ import annotations

import os
from pathlib import Path

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def process_tree(pid: int) -> list[int]:
    """The PID and all its living descendants."""
    found = [pid]
    index = 0
    while index < len(found):
        for task in Path(f"/proc/{found[index]}/task").glob("*/children"):
            try:
                found += [int(child) for child in task.read_text().split()]
            except OSError:
                continue
        index += 1
    return found


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds used so far by the tree under ``pid``."""
    ticks = 0
    for member in process_tree(pid):
        try:
            stat = Path(f"/proc/{member}/stat").read_text()
        except OSError:
            continue
        # Fields after the parenthesised command name; utime and stime are
        # fields 14 and 15 of the whole line, 12 and 13 after the name.
        fields = stat.rsplit(")", 1)[1].split()
        ticks += int(fields[11]) + int(fields[12])
    return ticks / CLOCK_TICKS


def peak_rss_mb(pid: int) -> float:
    """Sum of VmHWM (peak resident set) over the tree under ``pid``, in MiB."""
    return _status_sum(pid, "VmHWM:")


def rss_mb(pid: int) -> float:
    """Sum of VmRSS (resident set now) over the tree under ``pid``, in MiB."""
    return _status_sum(pid, "VmRSS:")


def _status_sum(pid: int, field: str) -> float:
    total_kb = 0
    for member in process_tree(pid):
        try:
            status = Path(f"/proc/{member}/status").read_text()
        except OSError:
            continue
        for line in status.splitlines():
            if line.startswith(field):
                total_kb += int(line.split()[1])
    return total_kb / 1024


def system_busy_seconds() -> float:
    """CPU seconds the whole machine has spent not idle (all cores), from /proc/stat.

    Compared with what the benchmark's own processes used over the same window,
    it shows how much CPU something else on the machine took during a run.
    """
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(f) for f in fields[:8])
    return (user + nice + system + irq + softirq + steal) / CLOCK_TICKS
