"""The booking's throughput over its database ceiling, both taken over the same minutes (issue 24's throughput
target: app and PostgreSQL on the same two CPUs, at least 30% of pgbench replaying the booking's statements).

The suite's booking phase books 190 slots in under half a second, and pgbench replays the booking minutes later.
This machine is shared and its speed drifts: pgbench's ceiling for the same statements measured 1,059 to 2,030
transactions a second across sessions, and the share so taken moved between 22% and 38% on the same code
(docs/benchmarks.md, "The tenth session"). Here the app (started again) books fresh free slots and pgbench
replays the booking's captured statements in alternating turns; the share is the app's bookings per second
over all its batches over pgbench's transactions per second over all its runs. The stack floor (floor_app.py) takes
its turn too: on a machine whose PostgreSQL is fast beside its Python, even the floor stays near the target."""

from __future__ import annotations

import random
import tempfile
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from benchmarks import scheduling
from benchmarks import scheduling_data as data
from benchmarks.ceilings import Captured, pgbench
from benchmarks.floor import FLOOR_APP, floor_capture, save_capture
from benchmarks.phases import Check, drive, status_is
from benchmarks.rawhttp import request_bytes
from benchmarks.server import environment, running_server

BUSY = data.DURATION + data.BUFFER_AFTER  # a consult's busy span: two of one prescriber's this far apart never collide


@dataclass(frozen=True)
class ShareTurn:
    app_bookings: int
    app_seconds: float
    app_errors: int
    floor_requests: int
    floor_seconds: float
    floor_errors: int
    pgbench_transactions: int
    pgbench_tps: float


@dataclass(frozen=True)
class BookingShare:
    """The app's side: a server's base URL -> its bookings (warm-up first), each of a slot free when it was made."""

    url: str  # the database the app serves
    bookings: Callable[[str], Awaitable[list[bytes]]]
    check: Check
    app: str = "app:app"  # what uvicorn serves


def spread_slots(offered: list[scheduling.OpenSlot], count: int, *, rng: random.Random) -> list[scheduling.OpenSlot]:
    """`count` of the offered slots at random, a prescriber's chosen ones never closer than a consult's busy span
    (several per prescriber: one per prescriber would allow 200 bookings a window)."""
    candidates = list(offered)
    rng.shuffle(candidates)
    chosen: list[scheduling.OpenSlot] = []
    taken: dict[str, list[datetime]] = {}
    for slot in candidates:
        starts = taken.setdefault(slot.clinician_id, [])
        if all(abs(slot.starts_at - other) >= BUSY for other in starts):
            starts.append(slot.starts_at)
            chosen.append(slot)
            if len(chosen) == count:
                return chosen
    raise RuntimeError(f"only {len(chosen)} free slots for the booking's share in turns")


async def booking_share_in_turns(
    share: BookingShare, captured: Captured, *, dsn: str, workers: int, concurrency: int, warmup: int, turns: int, pgbench_seconds: int
) -> dict[str, Any]:
    """`turns` batches of the app's bookings, each followed by as many of the stack floor's replays of the booking
    (floor_app.py: the same statements by raw asyncpg from a trivial endpoint, ending in ROLLBACK) and then by pgbench
    replaying them for `pgbench_seconds`. The floor's share of the same ceiling is the most an app on this stack could
    reach in those minutes (docs/benchmarks.md, "The eleventh session")."""
    capture = floor_capture([captured])
    with tempfile.TemporaryDirectory(prefix="bench-share-") as folder:
        path = Path(folder) / "capture.pickle"
        save_capture(capture, path)
        with environment({"FLOOR_CAPTURE": str(path)}):
            async with (
                running_server(share.url, workers=workers, separate_ports=True, app=share.app) as server,
                running_server(share.url, workers=workers, separate_ports=True, app=FLOOR_APP) as floor,
            ):
                requests = await share.bookings(server.base_url)
                replays = [request_bytes(floor.base_url, "GET", capture.path(captured.name, k)) for k in range(len(requests))]
                done: list[ShareTurn] = []
                measured = len(requests) - warmup
                for turn in range(turns):
                    first = turn == 0
                    batch = slice(warmup + turn * measured // turns, warmup + (turn + 1) * measured // turns)
                    series = await drive(
                        server,
                        "booking, in turns with pgbench",
                        (requests[:warmup] if first else []) + requests[batch],
                        concurrency=concurrency,
                        check=share.check,
                        warmup=warmup if first else 0,
                    )
                    floored = await drive(
                        floor,
                        "the booking's stack floor, in turns with pgbench",
                        (replays[:warmup] if first else []) + replays[batch],
                        concurrency=concurrency,
                        check=status_is(200),
                        warmup=warmup if first else 0,
                    )
                    replayed = await pgbench(dsn, captured, clients=concurrency, seconds=pgbench_seconds)
                    done.append(
                        ShareTurn(
                            len(series.seconds),
                            series.wall_seconds,
                            series.errors,
                            len(floored.seconds),
                            floored.wall_seconds,
                            floored.errors,
                            replayed.transactions,
                            replayed.transactions_per_second,
                        )
                    )
    app_per_second = sum(t.app_bookings for t in done) / sum(t.app_seconds for t in done)
    floor_per_second = sum(t.floor_requests for t in done) / sum(t.floor_seconds for t in done)
    pgbench_tps = sum(t.pgbench_transactions for t in done) / sum(t.pgbench_transactions / t.pgbench_tps for t in done)
    return {
        "turns": [asdict(t) for t in done],
        "app_per_second": app_per_second,
        "floor_per_second": floor_per_second,
        "pgbench_tps": pgbench_tps,
        "share": app_per_second / pgbench_tps,
        "floor_share": floor_per_second / pgbench_tps,
        "errors": sum(t.app_errors for t in done),
        "floor_errors": sum(t.floor_errors for t in done),
        "concurrency": concurrency,
        "pgbench_seconds": pgbench_seconds,
    }
