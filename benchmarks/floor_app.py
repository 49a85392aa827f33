"""The stack floor (issue 24): a trivial Litestar app whose one endpoint replays a captured request's statements
by raw asyncpg, served by uvicorn exactly as the app is (server.py), so the suite can set the app's CPU per
request beside the least the same statements cost through the same framework, server and driver.

    FLOOR_CAPTURE=/tmp/x.pickle DATABASE_URL=postgresql://... uvicorn benchmarks.floor_app:app

`GET /replay/{scenario}/{k}` runs the statements of captured request k of the scenario (floor.py writes the
file) inside BEGIN ... ROLLBACK, on a pooled connection with the codecs SQLAlchemy's asyncpg dialect sets
up (the captured parameters are what that dialect handed asyncpg), and answers how many rows came back.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
from litestar import Litestar, get

from benchmarks.floor import FloorCapture, driver_dsn, load_capture, set_dialect_codecs

_state: dict[str, Any] = {}


@asynccontextmanager
async def lifespan(app: Litestar) -> AsyncIterator[None]:
    capture: FloorCapture = load_capture(os.environ["FLOOR_CAPTURE"])
    pool = await asyncpg.create_pool(
        driver_dsn(os.environ["DATABASE_URL"]),
        min_size=1,
        max_size=int(os.environ.get("DATABASE_POOL_SIZE", "15")),
        init=set_dialect_codecs,
        server_settings={"application_name": "telehealth-floor"},
    )
    _state.update(capture=capture, pool=pool)
    try:
        yield
    finally:
        await pool.close()


@get("/ready", sync_to_thread=False)
def ready() -> dict[str, str]:
    return {"status": "ready"}


@get("/replay/{scenario:str}/{k:int}")
async def replay(scenario: str, k: int) -> dict[str, int]:
    statements = _state["capture"].request(scenario, k)
    rows = 0
    async with _state["pool"].acquire() as connection:
        transaction = connection.transaction()
        await transaction.start()
        try:
            for sql, parameters in statements:
                rows += len(await connection.fetch(sql, *parameters))
        finally:
            await transaction.rollback()
    return {"statements": len(statements), "rows": rows}


app = Litestar(route_handlers=[ready, replay], lifespan=[lifespan], debug=False)
