"""benchmarks/phases.py's drive_in_turns: two real servers (the stack floor's app, uvicorn) driven in alternating
batches, so a ratio of their CPU is taken over the same minutes. What is checked is the order the answers come
in and what each side counts, not how fast anything is."""

from __future__ import annotations

from pathlib import Path

from benchmarks.ceilings import Captured
from benchmarks.floor import FLOOR_APP, driver_dsn, floor_capture, save_capture
from benchmarks.phases import Check, drive_in_turns
from benchmarks.rawhttp import Answer, request_bytes
from benchmarks.server import environment, running_server


async def test_two_servers_take_turns_batch_by_batch(database_url: str, tmp_path: Path) -> None:
    capture = floor_capture([Captured("one", [[("SELECT $1::INTEGER", (k,))] for k in range(3)])])
    save_capture(capture, tmp_path / "capture.pickle")
    answered: list[str] = []

    def noted(side: str) -> Check:
        def check(answer: Answer) -> bool:
            answered.append(side)
            return answer.status == 200

        return check

    with environment({"FLOOR_CAPTURE": str(tmp_path / "capture.pickle")}):
        async with (
            running_server(driver_dsn(database_url), app=FLOOR_APP) as first,
            running_server(driver_dsn(database_url), app=FLOOR_APP) as second,
        ):
            sides = [
                (server, name, [request_bytes(server.base_url, "GET", capture.path("one", i)) for i in range(2 + count)], noted(name))
                for server, name, count in ((first, "a", 10), (second, "b", 7))
            ]
            a, b = await drive_in_turns(sides, concurrency=1, warmup=2, turns=3)

    # warm-ups first (a's, then b's), then a's batches and b's in turns: 3, 2, 3, 2, 4, 3
    assert "".join(answered) == "aa" + "bb" + "aaa" + "bb" + "aaa" + "bb" + "aaaa" + "bbb"
    assert (a.summary()["count"], b.summary()["count"]) == (10, 7)
    assert a.errors == b.errors == 0
    assert a.notes["turns"] == 3 and a.notes["concurrency"] == 1
    assert a.wall_seconds > 0 and b.wall_seconds > 0
    assert a.notes["app_cpu_ms"] is not None and b.notes["app_cpu_ms"] is not None
