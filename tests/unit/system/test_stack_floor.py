"""The stack floor's pure pieces (benchmarks/floor.py): which captured request a replay runs, the capture file, the
codecs' byte formats, the ratio, and the CPU tally the slot search's algorithm is measured with. Nothing timed."""

from __future__ import annotations

import json
import types
from datetime import UTC, datetime
from pathlib import Path

from benchmarks.ceilings import Captured
from benchmarks.floor import CpuTally, driver_dsn, floor_capture, jsonb_decoder, jsonb_encoder, load_capture, over_floor, save_capture


def _captured() -> list[Captured]:
    booking = Captured("booking", [[("SELECT $1::INTEGER", (k,))] for k in range(3)])
    return [booking, Captured("patient dashboard", [[("SELECT 1", ())]]), Captured("empty")]


def test_replays_cycle_through_the_captured_requests_so_neighbours_differ() -> None:
    capture = floor_capture(_captured())
    assert set(capture.scenarios) == {"booking", "patient-dashboard"}  # a scenario with no request has no floor
    assert [capture.request("booking", k)[0][1] for k in range(7)] == [(0,), (1,), (2,), (0,), (1,), (2,), (0,)]
    assert capture.path("patient dashboard", 12) == "/replay/patient-dashboard/12"
    assert capture.request("patient-dashboard", 12) == [("SELECT 1", ())]


def test_the_capture_file_keeps_parameters_as_python_values(tmp_path: Path) -> None:
    moment = datetime(2027, 1, 12, 14, 0, tzinfo=UTC)
    capture = floor_capture([Captured("slot search", [[("SELECT $1::TIMESTAMPTZ", (moment,))]])])
    save_capture(capture, tmp_path / "c.pickle")
    assert load_capture(tmp_path / "c.pickle").request("slot-search", 0) == [("SELECT $1::TIMESTAMPTZ", (moment,))]


def test_codecs_and_urls_match_the_sqlalchemy_dialect() -> None:
    text = json.dumps({"a": [1, "b"]})
    assert jsonb_encoder(text) == b"\x01" + text.encode()
    assert jsonb_decoder(jsonb_encoder(text)) == {"a": [1, "b"]}
    assert driver_dsn("postgresql+asyncpg://u@h:5432/d") == "postgresql://u@h:5432/d"
    assert driver_dsn("postgresql://u@h/d") == "postgresql://u@h/d"


def test_over_floor_adds_the_algorithm_to_the_floor() -> None:
    assert over_floor(6.0, 2.0) == 3.0
    assert over_floor(6.0, 2.0, extra_ms=1.0) == 2.0
    assert over_floor(None, 2.0) is None
    assert over_floor(6.0, 0.0) is None


def test_the_tally_counts_outer_calls_once_and_puts_the_functions_back() -> None:
    ticks = iter(range(100))
    module = types.ModuleType("fake")

    def inner(x: int) -> int:
        return x + 1

    def outer(x: int) -> int:
        return module.inner(x) * 2

    module.inner, module.outer = inner, outer
    with CpuTally(module, ["outer", "inner"], clock=lambda: float(next(ticks))) as tally:
        assert module.outer(1) == 4  # outer reads the clock twice; the nested inner is not timed again
        assert module.inner(1) == 2
    assert tally.seconds == 2.0
    assert module.outer is outer and module.inner is inner
