"""Where the CPU went during a phase: the app server's processes, PostgreSQL's processes and this process
(the load generator, or the app itself when a service is called in-process), read from /proc."""

from __future__ import annotations

import os
import time
from pathlib import Path

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def process_table() -> dict[int, tuple[str, int, float]]:
    """pid -> (command name, parent pid, CPU seconds used so far)."""
    processes = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            raw = (entry / "stat").read_text()
        except OSError:  # ended meanwhile
            continue
        name = raw[raw.index("(") + 1 : raw.rindex(")")]
        fields = raw[raw.rindex(")") + 2 :].split()
        processes[int(entry.name)] = (name, int(fields[1]), (int(fields[11]) + int(fields[12])) / CLOCK_TICKS)
    return processes


def descendants(root: int, processes: dict[int, tuple[str, int, float]]) -> set[int]:
    tree, grew = {root}, True
    while grew:
        grew = False
        for pid, (_, parent, _) in processes.items():
            if parent in tree and pid not in tree:
                tree.add(pid)
                grew = True
    return tree


class CpuMeter:
    """CPU seconds per group between start() and stop(); processes that ended meanwhile are not counted."""

    def __init__(self, server_pid: int | None, *, self_label: str = "load generator") -> None:
        self.server_pid = server_pid
        self.self_label = self_label

    def start(self) -> None:
        self.before = process_table()
        self.started = time.perf_counter()

    def stop(self) -> dict[str, float]:
        after = process_table()
        wall = time.perf_counter() - self.started

        def used(pids: set[int]) -> float:
            return sum(after[pid][2] - (self.before[pid][2] if pid in self.before else 0.0) for pid in pids if pid in after)

        server = descendants(self.server_pid, after) if self.server_pid else set()
        postgres = {pid for pid, (name, _, _) in after.items() if name.startswith("postgres")}
        groups = {"app server": used(server), "PostgreSQL": used(postgres), self.self_label: used({os.getpid()})}
        groups = {name: seconds for name, seconds in groups.items() if name != "app server" or self.server_pid}
        groups["all processes"] = used(set(after))
        groups["wall"] = wall
        return groups


def describe(groups: dict[str, float], requests: int) -> str:
    """'app server 4.1, PostgreSQL 2.0, load generator 0.9 ms/request; CPUs 95% busy'."""
    cpus = len(os.sched_getaffinity(0))
    parts = ", ".join(
        f"{name} {seconds / requests * 1000:.1f}" for name, seconds in groups.items() if name not in {"all processes", "wall"}
    )
    busy = groups["all processes"] / (groups["wall"] * cpus) if groups["wall"] else 0.0
    return f"{parts} CPU ms per request; {cpus} CPUs {busy:.0%} busy"
