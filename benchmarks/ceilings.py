"""The two ceilings a scenario is measured against (issue 9), so its figures mean something on any machine.

- The framework's: GET /health of the same app under the same server, client and concurrency: the whole
  middleware stack, no database.
- The database's: pgbench replaying the very SQL statements one request of the scenario sends, with the
  same number of connections. The statements are captured in-process (RequestCapture): the app from
  create_app, driven over ASGI, against a copy of the benchmark database made with CREATE DATABASE ...
  TEMPLATE, so the captured writes never reach the database pgbench then runs on. Each pgbench client
  replays the request captured for it (`\\if :client_id = k`: different patients, slots and addresses, so
  clients do not collide on unique or exclusion constraints) inside BEGIN ... ROLLBACK, which makes every
  transaction repeatable. The rollback skips the commit's WAL flush, so the ceiling is, if anything,
  higher than the database could really sustain, and the ratio to it conservative.
"""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import tempfile
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time
from decimal import Decimal
from enum import Enum
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from litestar.testing import AsyncTestClient
from sqlalchemy import event

from benchmarks.cpu import process_table
from telehealth.asgi import create_app
from telehealth.db import driver
from telehealth.settings import Settings

Statement = tuple[str, tuple[Any, ...]]
PLACEHOLDER = re.compile(r"\$(\d+)")
DRIVER_CALLS = ("fetch", "fetchrow", "fetchval", "execute")


def _text(text: str) -> str:
    """A string literal. pgbench reads `:name` anywhere in a statement as a variable, even inside quotes, so
    text holding a colon (times, URLs, JSON) is written as its UTF-8 bytes in hex instead."""
    if ":" in text:
        return f"convert_from('\\x{text.encode().hex()}'::bytea, 'UTF8')"
    return "'" + text.replace("'", "''") + "'"


def sql_literal(value: Any) -> str:
    """One bound parameter as SQL text (the statements carry their own casts: `$1::UUID`), free of colons."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Enum):
        value = value.value
    if isinstance(value, int | float | Decimal):
        return str(value)
    if isinstance(value, bytes):
        return f"'\\x{value.hex()}'::bytea"
    if isinstance(value, datetime):
        moment = f"to_timestamp({(value if value.tzinfo else value.replace(tzinfo=UTC)).timestamp():.6f})"
        return moment if value.tzinfo else f"({moment} AT TIME ZONE 'UTC')"
    if isinstance(value, date):
        return f"'{value.isoformat()}'"
    if isinstance(value, time):
        return f"make_time({value.hour}, {value.minute}, {value.second + value.microsecond / 1e6})"
    if isinstance(value, list | tuple):
        return "ARRAY[" + ", ".join(sql_literal(item) for item in value) + "]" if value else "'{}'"
    if isinstance(value, dict):
        value = json.dumps(value)
    return _text(str(value))


def inline(statement: str, parameters: tuple[Any, ...]) -> str:
    """The statement with its $n parameters written in as literals, ready for a pgbench script."""
    return PLACEHOLDER.sub(lambda match: sql_literal(parameters[int(match.group(1)) - 1]), statement).strip()


@dataclass
class Captured:
    """What one scenario's requests sent: one list of statements per captured request (per pgbench client)."""

    name: str
    requests: list[list[Statement]] = field(default_factory=list)

    @property
    def statements_per_request(self) -> float:
        return sum(len(r) for r in self.requests) / len(self.requests) if self.requests else 0.0

    def pgbench_script(self) -> str:
        """BEGIN; the statements of the client's own captured request; ROLLBACK."""
        lines = ["BEGIN;"]
        for k, statements in enumerate(self.requests):
            lines.append(("\\if" if k == 0 else "\\elif") + f" :client_id = {k}")
            lines += [inline(sql, parameters) + ";" for sql, parameters in statements]
        lines += ["\\endif", "ROLLBACK;"]
        return "\n".join(lines) + "\n"


async def typed_parameters(session: Any, sql: str) -> str:
    """A driver statement's SQL with each `$n` cast to the type PostgreSQL gave it (`$3::pg_catalog.jsonb`).

    SQLAlchemy's statements carry their own casts; the driver's SQL text does not, and a literal written in for
    pgbench (JSON with a colon goes in as `convert_from(...)`, a text) would not fit a jsonb or uuid column.
    asyncpg knows each parameter's type from the statement's preparation (cached per connection)."""
    _, _, raw = await driver._driver(session)
    types = [f"{kind.schema}.{kind.name}" for kind in (await raw.prepare(sql)).get_parameters()]  # an array's name is text[]
    return PLACEHOLDER.sub(lambda match: f"{match.group(0)}::{types[int(match.group(1)) - 1]}", sql)


class RequestCapture:
    """The app in-process against `database_url`, recording every statement its engine sends per request."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.current: list[Statement] | None = None

    def _record(self, conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool) -> None:
        if self.current is not None:
            if executemany:  # one statement per row, as pgbench would have to send them
                for row in parameters:
                    self.current.append((statement, tuple(row)))
            else:
                self.current.append((statement, tuple(parameters or ())))

    def _recording(self, call: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
        async def recorded(session: Any, sql: str, *args: Any) -> Any:
            if self.current is not None:
                self.current.append((await typed_parameters(session, sql), tuple(args)))
            return await call(session, sql, *args)

        return recorded

    @asynccontextmanager
    async def client(self) -> AsyncIterator[httpx.AsyncClient]:
        app = create_app(self.settings)
        async with AsyncTestClient(app=app, base_url="http://127.0.0.1") as client:
            engine = app.state.engine.sync_engine
            event.listen(engine, "before_cursor_execute", self._record)
            saved = {name: getattr(driver, name) for name in DRIVER_CALLS}
            for name, call in saved.items():  # statements sent on the driver (db/driver.py) pass no cursor event
                setattr(driver, name, self._recording(call))
            try:
                response = await client.get("/sign-in")
                response.raise_for_status()
                client.headers["x-csrftoken"] = client.cookies["csrftoken"]
                yield client
            finally:
                event.remove(engine, "before_cursor_execute", self._record)
                for name, call in saved.items():
                    setattr(driver, name, call)

    async def capture(self, name: str, client: httpx.AsyncClient, calls: list[Callable[[httpx.AsyncClient], Awaitable[bool]]]) -> Captured:
        """Each call is one request that must succeed; its statements become one pgbench client's transaction."""
        captured = Captured(name)
        for call in calls:
            self.current = []
            try:
                ok = await call(client)
            finally:
                statements, self.current = self.current, None
            if not ok:
                raise RuntimeError(f"a captured request of {name!r} did not succeed")
            captured.requests.append(statements)
        return captured


@asynccontextmanager
async def database_copy(admin_dsn: str, source: str) -> AsyncIterator[str]:
    """A throwaway copy of `source` (nobody may be connected to it meanwhile); yields its name, drops it after."""
    name = f"{source}_capture_{uuid.uuid4().hex[:6]}"
    connection = await asyncpg.connect(admin_dsn)
    try:
        await connection.execute(f'CREATE DATABASE "{name}" TEMPLATE "{source}"')
        yield name
    finally:
        await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await connection.close()


@dataclass(frozen=True)
class PgbenchResult:
    transactions_per_second: float
    latency_ms: float
    transactions: int
    failed: int
    postgres_cpu_ms: float | None = None  # PostgreSQL's CPU per transaction while pgbench ran (from /proc)

    def as_dict(self) -> dict[str, Any]:
        return {
            "tps": self.transactions_per_second,
            "latency_ms": self.latency_ms,
            "transactions": self.transactions,
            "failed": self.failed,
            "postgres_cpu_ms": self.postgres_cpu_ms,
        }


def run_pgbench(dsn: str, captured: Captured, *, clients: int, seconds: int) -> PgbenchResult:
    """pgbench -M prepared (the app's statements are prepared too: asyncpg caches them per connection)."""
    if len(captured.requests) < clients:
        raise ValueError(f"{captured.name}: {len(captured.requests)} captured requests for {clients} clients")
    with tempfile.NamedTemporaryFile("w", suffix=".sql", prefix="bench-pgbench-", delete=False) as script:
        script.write(captured.pgbench_script())
    command = [
        "pgbench",
        "--no-vacuum",
        "--protocol=prepared",
        f"--client={clients}",
        f"--jobs={min(clients, 2)}",
        f"--time={seconds}",
        f"--file={script.name}",
        dsn,
    ]
    finished = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 120)
    output = finished.stdout + finished.stderr
    tps = re.search(r"tps = ([\d.]+) \(without initial connection time\)", output)
    latency = re.search(r"latency average = ([\d.]+) ms", output)
    processed = re.search(r"number of transactions actually processed: (\d+)", output)
    failed = re.search(r"number of failed transactions: (\d+)", output)
    if finished.returncode != 0 or not tps:
        raise RuntimeError(f"pgbench for {captured.name} failed ({finished.returncode}); script {script.name}:\n{output[-3000:]}")
    Path(script.name).unlink()
    return PgbenchResult(
        float(tps.group(1)),
        float(latency.group(1)) if latency else float("nan"),
        int(processed.group(1)) if processed else 0,
        int(failed.group(1)) if failed else 0,
    )


async def pgbench(dsn: str, captured: Captured, *, clients: int, seconds: int) -> PgbenchResult:
    """run_pgbench, with PostgreSQL's CPU per transaction: what the database spends on one replay, to set
    beside what it spends on one of the app's requests (the suite's "database CPU" share)."""
    before = _postgres_cpu()
    seen: dict[int, float] = {}
    run = asyncio.create_task(asyncio.to_thread(run_pgbench, dsn, captured, clients=clients, seconds=seconds))
    while not run.done():  # pgbench's backends end with it: read their CPU while they live
        seen.update(_postgres_cpu())
        await asyncio.wait({run}, timeout=0.2)
    result = run.result()
    postgres_seconds = sum(cpu - before.get(pid, 0.0) for pid, cpu in seen.items())
    return replace(result, postgres_cpu_ms=postgres_seconds / result.transactions * 1000 if result.transactions else None)


def _postgres_cpu() -> dict[int, float]:
    return {pid: cpu for pid, (name, _, cpu) in process_table().items() if name.startswith("postgres")}
