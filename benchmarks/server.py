"""The app served by uvicorn in a subprocess, as in production (one process, no access log, no worker)."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from telehealth.settings import PROJECT_ROOT


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def server_environment(database_url: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        DATABASE_URL=database_url,
        APP_ENV="development",
        SEED_DEMO="false",
        AUTO_MIGRATE="false",
        RUN_WORKER_IN_PROCESS="false",
        WAITLIST_JOINS_PER_IP_PER_HOUR="100000000",
    )
    return env


@dataclass(frozen=True)
class Server:
    base_url: str
    pid: int
    dsn: str  # the database it serves


@asynccontextmanager
async def running_server(database_url: str, *, workers: int = 1, ready_timeout: float = 60.0) -> AsyncIterator[Server]:
    """Start `uvicorn app:app` from the project root, wait for /ready, yield where it listens, stop it."""
    port = free_port()
    log_path = Path(tempfile.mkstemp(prefix="bench-uvicorn-", suffix=".log")[1])
    command = [
        sys.executable, "-m", "uvicorn", "app:app", "--host", "127.0.0.1", "--port", str(port),
        "--workers", str(workers), "--no-access-log", "--log-level", "warning",
    ]  # fmt: skip
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, cwd=PROJECT_ROOT, env=server_environment(database_url), stdout=log, stderr=log)
    base_url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + ready_timeout
        async with httpx.AsyncClient(base_url=base_url, timeout=5) as client:
            while True:
                if process.poll() is not None:
                    raise RuntimeError(f"uvicorn exited with {process.returncode}:\n{log_path.read_text()[-3000:]}")
                try:
                    if (await client.get("/ready")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError(f"/ready did not answer 200 within {ready_timeout:.0f} s:\n{log_path.read_text()[-3000:]}")
                await asyncio.sleep(0.2)
        yield Server(base_url, process.pid, database_url)
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                await asyncio.to_thread(process.wait, 20)
            except subprocess.TimeoutExpired:
                process.kill()
                await asyncio.to_thread(process.wait, 5)
        errors = log_path.read_text(errors="replace").strip()
        if errors:
            print(f"(uvicorn's log, {log_path}):\n{errors[-2000:]}", file=sys.stderr)
        else:
            log_path.unlink(missing_ok=True)


@contextmanager
def environment(extra: dict[str, str]) -> Iterator[None]:
    """Variables the server subprocess inherits (server_environment copies os.environ), restored after."""
    saved = {name: os.environ.get(name) for name in extra}
    os.environ.update(extra)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@contextmanager
def fake_stripe() -> Iterator[tuple[str, int]]:
    """The project's fake of Stripe's API (`python -m tests.fakes.stripe_api --port N`, no webhook URL: it sends
    no events) in a subprocess of its own, so its CPU is neither the app's nor the load generator's.
    Yields its base URL and pid."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.fakes.stripe_api", "--port", str(port)], cwd=PROJECT_ROOT,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the fake Stripe API did not start") from None
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}", process.pid
    finally:
        process.terminate()
        process.wait(10)
