"""The third ceiling (issue 24), the stack floor: each scenario's captured statements (ceilings.py) replayed by
raw asyncpg from a trivial Litestar endpoint (floor_app.py) under the same uvicorn settings, client and
in-flight count as the app. The app's CPU per request over the floor's is how much of it is ours.

    python -m benchmarks floor [--only scheduling]    # only what the floor needs: no soak, race or pgbench

The suite (suite.py) runs the floor after each group's capture, in turns with the app's own requests of the
scenario (batch by batch, so both are measured over the same minutes); `floor` is the suite cut down to the
scenarios that have a floor, for iterating on the app's CPU cheaply (nothing is written).
"""

from __future__ import annotations

import argparse
import json
import pickle
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType, TracebackType
from typing import Any

from benchmarks.ceilings import Captured, Statement

SLOT_SEARCH = "slot search"

FLOOR_APP = "benchmarks.floor_app:app"  # what uvicorn serves for the stack floor


@dataclass(frozen=True)
class FloorCapture:
    """Every captured scenario of a group: name -> one list of statements per captured request."""

    scenarios: dict[str, list[list[Statement]]]

    def request(self, scenario: str, k: int) -> list[Statement]:
        """Captured request k of the scenario, cycling, so consecutive requests (those in flight together) are
        different captured requests: different patients and slots, no waits on each other's constraints."""
        requests = self.scenarios[scenario]
        return requests[k % len(requests)]

    def path(self, scenario: str, k: int) -> str:
        return f"/replay/{scenario.replace(' ', '-')}/{k}"


def floor_capture(captures: list[Captured]) -> FloorCapture:
    return FloorCapture({captured.name.replace(" ", "-"): captured.requests for captured in captures if captured.requests})


def save_capture(capture: FloorCapture, path: str | Path) -> None:
    Path(path).write_bytes(pickle.dumps(capture.scenarios))


def load_capture(path: str | Path) -> FloorCapture:
    return FloorCapture(pickle.loads(Path(path).read_bytes()))


def driver_dsn(url: str) -> str:
    """asyncpg's spelling of a SQLAlchemy-style URL."""
    for prefix in ("postgresql+asyncpg://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql://" + url[len(prefix) :]
    return url


def jsonb_encoder(text: str) -> bytes:
    """jsonb's binary format: a version byte, then the text (SQLAlchemy hands asyncpg JSON already serialized)."""
    return b"\x01" + text.encode()


def jsonb_decoder(data: bytes) -> Any:
    return json.loads(data[1:].decode())


async def set_dialect_codecs(connection: Any) -> None:
    """The codecs SQLAlchemy's asyncpg dialect sets on each connection, so captured parameters bind alike."""
    await connection.set_type_codec(
        "json", encoder=str.encode, decoder=lambda data: json.loads(data.decode()), schema="pg_catalog", format="binary"
    )
    await connection.set_type_codec("jsonb", encoder=jsonb_encoder, decoder=jsonb_decoder, schema="pg_catalog", format="binary")
    for name in ("inet", "cidr"):
        await connection.set_type_codec(name, encoder=lambda s: s, decoder=lambda s: s, schema="pg_catalog", format="text")


def over_floor(app_cpu_ms: float | None, floor_cpu_ms: float | None, extra_ms: float = 0.0) -> float | None:
    """The app's CPU per request over the floor's (plus `extra_ms`, Python the scenario cannot do without)."""
    if not app_cpu_ms or not floor_cpu_ms:
        return None
    return app_cpu_ms / (floor_cpu_ms + extra_ms)


class CpuTally:
    """Process CPU spent inside chosen functions of a module while the tally is entered (each name is replaced by
    a timed wrapper, put back on exit). Calls nested in a timed call are counted once, in the outer one. The
    suite measures the slot search's own algorithm (slots.py, called from the service) so."""

    def __init__(self, module: ModuleType, names: list[str], clock: Callable[[], float] = time.process_time) -> None:
        self.module, self.names, self.clock = module, names, clock
        self.seconds = 0.0
        self._depth = 0
        self._saved: dict[str, Any] = {}

    def _timed(self, original: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            if self._depth:
                return original(*args, **kwargs)
            self._depth += 1
            started = self.clock()
            try:
                return original(*args, **kwargs)
            finally:
                self.seconds += self.clock() - started
                self._depth -= 1

        return timed

    def __enter__(self) -> CpuTally:
        for name in self.names:
            self._saved[name] = getattr(self.module, name)
            setattr(self.module, name, self._timed(self._saved[name]))
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None) -> None:
        for name, original in self._saved.items():
            setattr(self.module, name, original)
        self._saved.clear()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from benchmarks import suite

    suite.add_arguments(parser)
    parser.set_defaults(soak_minutes=0.0, write="-", floor_only=True)


async def run(args: argparse.Namespace) -> int:
    from benchmarks import suite

    return await suite.run(args)
