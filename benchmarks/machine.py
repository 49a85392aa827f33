"""What the figures were measured on: CPUs, CPU model, memory, PostgreSQL and its main settings."""

from __future__ import annotations

import os
import platform
from pathlib import Path

import asyncpg

PG_SETTINGS = (
    "shared_buffers",
    "work_mem",
    "effective_cache_size",
    "random_page_cost",
    "max_parallel_workers_per_gather",
    "jit",
    "synchronous_commit",
    "plan_cache_mode",
)


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _memory() -> str:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    except OSError:
        pass
    return "unknown"


async def machine_facts(dsn: str) -> dict[str, str]:
    connection = await asyncpg.connect(dsn)
    try:
        version = await connection.fetchval("SELECT version()")
        settings = {name: await connection.fetchval(f"SHOW {name}") for name in PG_SETTINGS}
    finally:
        await connection.close()
    return {
        "cpus (nproc)": str(len(os.sched_getaffinity(0))),
        "cpu model": _cpu_model(),
        "memory": _memory(),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "postgresql": version,
        "postgresql settings": ", ".join(f"{k}={v}" for k, v in settings.items()),
    }
