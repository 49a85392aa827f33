"""The suite's load phases over rawhttp: a fixed number of prepared requests with N in flight, a race where
every client is released at once, and a timed mixed load that samples the app processes' memory."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks.cpu import CpuMeter, describe
from benchmarks.rawhttp import Answer, Connection
from benchmarks.server import Server
from benchmarks.stats import Series
from benchmarks.waitlist import log

Check = Callable[[Answer], bool]


def status_is(*expected: int) -> Check:
    return lambda answer: answer.status in expected


TRANSPORT_ERRORS = (OSError, asyncio.IncompleteReadError, ValueError)


async def _connections(server: Server, count: int) -> list[Connection]:
    """`count` keep-alive connections, spread over the app processes in turn (a load balancer's round robin)."""
    urls = server.every_url
    connections = [Connection(urls[i % len(urls)]) for i in range(count)]
    await asyncio.gather(*(connection.connect() for connection in connections))
    return connections


async def _lanes(connections: list[Connection], requests: list[bytes], check: Check, series: Series) -> None:
    queue = iter(requests)  # shared: each lane takes the next request when its previous answer is in
    failures: list[str] = []

    async def lane(connection: Connection) -> None:
        for request in queue:
            started = time.perf_counter()
            try:
                answer = await connection.send(request)
                ok = check(answer)
                failure = f"{answer.status} {answer.body[:200]!r}"
            except TRANSPORT_ERRORS as error:
                ok, failure = False, f"{type(error).__name__}: {error}"
            if ok:
                series.seconds.append(time.perf_counter() - started)
            else:
                series.errors += 1
                failures.append(failure)

    await asyncio.gather(*(lane(connection) for connection in connections))
    if failures:
        log(f"  {series.name}: {len(failures)} failed, e.g. {failures[0]}")


async def drive(server: Server, name: str, requests: list[bytes], *, concurrency: int, check: Check, warmup: int) -> Series:
    """The first `warmup` requests unmeasured, then the rest, each timed from its write to its whole answer."""
    connections = await _connections(server, concurrency)
    try:
        await _lanes(connections, requests[:warmup], check, Series(f"{name} (warm-up)"))
        series = Series(name)
        meter = CpuMeter(server.pid)
        meter.start()
        started = time.perf_counter()
        await _lanes(connections, requests[warmup:], check, series)
        series.wall_seconds = time.perf_counter() - started
        used, measured = meter.stop(), len(requests) - warmup
        series.notes["cpu"] = describe(used, measured)
        series.notes["postgres_cpu_ms"] = used["PostgreSQL"] / measured * 1000 if measured else None
        series.notes["app_cpu_ms"] = used["app server"] / measured * 1000 if measured else None
    finally:
        await asyncio.gather(*(connection.close() for connection in connections))
    series.notes["concurrency"] = concurrency
    return series


async def drive_in_turns(sides: list[tuple[Server, str, list[bytes], Check]], *, concurrency: int, warmup: int, turns: int) -> list[Series]:
    """Two (or more) servers' requests in alternating batches: each side's first `warmup` unmeasured, then its
    measured requests cut into `turns` batches, side after side, batch after batch. A ratio of two sides' CPU per
    request is then taken over the same minutes: this machine's speed drifts (it is shared), and the same two
    figures taken minutes apart moved by a quarter from run to run. Each side's CPU meter runs over every turn
    (an idle uvicorn spends next to nothing, and one reading over the whole phase keeps /proc's 10 ms ticks
    from adding up per batch); its wall time is its own batches'."""
    connections = [await _connections(server, concurrency) for server, _, _, _ in sides]
    try:
        for lanes, (_, name, requests, check) in zip(connections, sides, strict=True):
            await _lanes(lanes, requests[:warmup], check, Series(f"{name} (warm-up)"))
        series = [Series(name) for _, name, _, _ in sides]
        meters = [CpuMeter(server.pid) for server, _, _, _ in sides]
        for meter in meters:
            meter.start()
        for turn in range(turns):
            for lanes, (_, _, requests, check), measured in zip(connections, sides, series, strict=True):
                batch = requests[warmup:]
                started = time.perf_counter()
                await _lanes(lanes, batch[turn * len(batch) // turns : (turn + 1) * len(batch) // turns], check, measured)
                measured.wall_seconds += time.perf_counter() - started
        for meter, measured, (_, _, requests, _) in zip(meters, series, sides, strict=True):
            used, count = meter.stop(), len(requests) - warmup
            measured.notes["cpu"] = describe(used, count)
            measured.notes["postgres_cpu_ms"] = used["PostgreSQL"] / count * 1000 if count else None
            measured.notes["app_cpu_ms"] = used["app server"] / count * 1000 if count else None
            measured.notes["concurrency"] = concurrency
            measured.notes["turns"] = turns
    finally:
        await asyncio.gather(*(connection.close() for lanes in connections for connection in lanes))
    return series


async def release_at_once(server: Server, requests: list[bytes]) -> tuple[list[tuple[int, float, bytes]], dict[str, float], float]:
    """Every request on its own connected connection, all written at the same moment; (status, seconds, body) each,
    the CPU split and the wall time."""
    connections = await _connections(server, len(requests))
    go = asyncio.Event()

    async def attempt(connection: Connection, request: bytes) -> tuple[int, float, bytes]:
        await go.wait()
        started = time.perf_counter()
        try:
            answer = await connection.send(request)
            return answer.status, time.perf_counter() - started, answer.body
        except TRANSPORT_ERRORS as error:
            return 0, time.perf_counter() - started, repr(error).encode()

    try:
        tasks = [asyncio.create_task(attempt(connection, request)) for connection, request in zip(connections, requests, strict=True)]
        await asyncio.sleep(0.05)  # every task waits at the gate
        meter = CpuMeter(server.pid)
        meter.start()
        released = time.perf_counter()
        go.set()
        outcomes = await asyncio.gather(*tasks)
        wall = time.perf_counter() - released
        return outcomes, meter.stop(), wall
    finally:
        await asyncio.gather(*(connection.close() for connection in connections))


def app_processes(server: Server) -> list[int]:
    """The app processes: the uvicorn, or the children of the shell that started several (or of a uvicorn
    supervising workers)."""
    children = Path(f"/proc/{server.pid}/task/{server.pid}/children").read_text().split()
    workers = [int(pid) for pid in children if b"resource_tracker" not in Path(f"/proc/{pid}/cmdline").read_bytes()]
    return workers or [server.pid]


def resident_mb(pid: int) -> float:
    """VmRSS of one process, in MB (10^6 bytes)."""
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"VmRSS:\s+(\d+) kB", status).group(1)) * 1024 / 1e6  # type: ignore[union-attr]


async def soak(server: Server, make: Callable[[int], tuple[bytes, Check]], *, minutes: float, concurrency: int) -> dict[str, Any]:
    """make(i) -> (request, check) with `concurrency` in flight for `minutes`; each app process's RSS every 30 s."""
    processes = app_processes(server)
    began = time.monotonic()
    stop = began + minutes * 60
    samples = [(0.0, [resident_mb(pid) for pid in processes])]
    counter = iter(range(10**9))
    done = errors = 0
    connections = await _connections(server, concurrency)

    async def lane(connection: Connection) -> None:
        nonlocal done, errors
        while time.monotonic() < stop:
            request, check = make(next(counter))
            try:
                ok = check(await connection.send(request))
            except TRANSPORT_ERRORS:
                ok = False
            done += 1
            errors += not ok

    async def sampler() -> None:
        while time.monotonic() < stop:
            await asyncio.sleep(min(30.0, max(0.0, stop - time.monotonic())))
            samples.append((time.monotonic() - began, [resident_mb(pid) for pid in processes]))
            log(f"  soak {samples[-1][0] / 60:.1f} min: {done:,} requests, {errors} failed, RSS {samples[-1][1]} MB")

    try:
        await asyncio.gather(sampler(), *(lane(connection) for connection in connections))
    finally:
        await asyncio.gather(*(connection.close() for connection in connections))
    return {"minutes": minutes, "requests": done, "errors": errors, "processes": len(processes), "rss_mb": samples}
