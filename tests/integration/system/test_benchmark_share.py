"""benchmarks/share.py: the booking's share of its database ceiling, the app's batches and pgbench's runs in
turns over the same minutes, with the stack floor's replays of the booking between them (a real uvicorn serving the
stack floor's app on both sides, a real pgbench). What is checked is what each turn counts and how the shares are
made of them, not how fast anything is."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from benchmarks.ceilings import Captured
from benchmarks.floor import FLOOR_APP, driver_dsn, floor_capture, save_capture
from benchmarks.rawhttp import Answer, request_bytes
from benchmarks.scheduling import OpenSlot
from benchmarks.server import environment
from benchmarks.share import BUSY, BookingShare, booking_share_in_turns, spread_slots


async def test_the_app_and_pgbench_take_turns_and_the_share_is_the_ratio_of_their_totals(database_url: str, tmp_path: Path) -> None:
    captured = Captured("one", [[("SELECT $1::INTEGER", (k,))] for k in range(2)])
    capture = floor_capture([captured])
    save_capture(capture, tmp_path / "capture.pickle")
    answered: list[int] = []

    async def bookings(base: str) -> list[bytes]:
        return [request_bytes(base, "GET", capture.path("one", i)) for i in range(3 + 10)]

    def check(answer: Answer) -> bool:
        answered.append(answer.status)
        return answer.status == 200

    share = BookingShare(driver_dsn(database_url), bookings, check, app=FLOOR_APP)
    with environment({"FLOOR_CAPTURE": str(tmp_path / "capture.pickle")}):
        found = await booking_share_in_turns(
            share, captured, dsn=driver_dsn(database_url), workers=1, concurrency=2, warmup=3, turns=3, pgbench_seconds=1
        )

    assert answered == [200] * 13  # the warm-up once, then every measured request
    assert [turn["app_bookings"] for turn in found["turns"]] == [3, 3, 4]
    assert [turn["floor_requests"] for turn in found["turns"]] == [3, 3, 4]  # the stack floor's turn: as many replays
    assert all(turn["pgbench_transactions"] > 0 and turn["app_seconds"] > 0 and turn["floor_seconds"] > 0 for turn in found["turns"])
    app = 10 / sum(turn["app_seconds"] for turn in found["turns"])
    floor = 10 / sum(turn["floor_seconds"] for turn in found["turns"])
    replays = sum(t["pgbench_transactions"] for t in found["turns"]) / sum(
        t["pgbench_transactions"] / t["pgbench_tps"] for t in found["turns"]
    )
    assert found["app_per_second"] == pytest.approx(app)
    assert found["pgbench_tps"] == pytest.approx(replays)
    assert found["share"] == pytest.approx(app / replays)
    assert found["floor_per_second"] == pytest.approx(floor)
    assert found["floor_share"] == pytest.approx(floor / replays)
    assert found["errors"] == found["floor_errors"] == 0


def test_spread_slots_never_puts_two_of_a_prescribers_bookings_within_a_consult_of_each_other() -> None:
    start = datetime(2027, 1, 4, 9, tzinfo=UTC)
    offered = [OpenSlot(f"p{p}", start + timedelta(minutes=15 * k)) for p in range(3) for k in range(16)]  # 4 hours each
    chosen = spread_slots(offered, 9, rng=random.Random(7))
    assert len(chosen) == len(set(chosen)) == 9
    for slot in chosen:
        assert all(
            abs(slot.starts_at - other.starts_at) >= BUSY for other in chosen if other.clinician_id == slot.clinician_id and other != slot
        )
    with pytest.raises(RuntimeError, match="only"):
        spread_slots(offered, 20, rng=random.Random(7))  # at most four a prescriber: 9:00, 10:00, 11:00, 12:00
