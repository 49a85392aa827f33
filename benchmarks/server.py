"""The app served by uvicorn in subprocesses, as in production (no access log, no in-process worker, templates not
checked for edits on each render).

With `separate_ports`, several app processes are separate uvicorns on ports of their own, and the load
generator (phases.py) spreads its connections over them in turn, as the load balancer in front of
production does (docs/operations.md, "Deployment"); the suite runs so. `uvicorn --workers N` (the other
benchmarks' --server-workers) shares one listening socket instead, and the kernel handed most of a
phase's few keep-alive connections to one process: with 8 in flight the two CPUs were often half idle
while one process queued (docs/benchmarks.md, "Reading the suite's last run")."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import httpx

from benchmarks.cpu import descendants, process_table
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
        TEMPLATE_AUTO_RELOAD="false",  # pages rendered as production renders them: no check of the files for edits
        WAITLIST_JOINS_PER_IP_PER_HOUR="100000000",
    )
    return env


@dataclass(frozen=True)
class Server:
    base_url: str  # the first app process
    pid: int  # the parent of every app process (CpuMeter counts its descendants)
    dsn: str  # the database it serves
    base_urls: tuple[str, ...] = ()  # every app process, for load generators to spread connections over

    @property
    def every_url(self) -> tuple[str, ...]:
        return self.base_urls or (self.base_url,)


def _uvicorn(port: int, workers: int = 1, app: str = "app:app") -> list[str]:
    return [
        sys.executable,
        "-m",
        "uvicorn",
        app,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--no-access-log",
        "--log-level",
        "warning",
    ]


@asynccontextmanager
async def running_server(
    database_url: str, *, workers: int = 1, separate_ports: bool = False, ready_timeout: float = 60.0, app: str = "app:app"
) -> AsyncIterator[Server]:
    """Start `workers` app processes from the project root (one `uvicorn app:app --workers N`, or with
    `separate_ports` one uvicorn per port under one shell), wait for each port's /ready, yield where they
    listen, stop them. `app`: what uvicorn serves (the stack floor's trivial app, floor_app.py, is served alike)."""
    ports = [free_port() for _ in range(workers if separate_ports else 1)]
    log_path = Path(tempfile.mkstemp(prefix="bench-uvicorn-", suffix=".log")[1])
    if len(ports) == 1:
        command = _uvicorn(ports[0], workers, app)
    else:  # a shell parent, so one pid's descendants are every app process, and one signal to the group stops them
        command = ["sh", "-c", " & ".join(" ".join(_uvicorn(port, 1, app)) for port in ports) + " & wait"]
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command, cwd=PROJECT_ROOT, env=server_environment(database_url), stdout=log, stderr=log, start_new_session=True
        )
    base_urls = tuple(f"http://127.0.0.1:{port}" for port in ports)
    try:
        deadline = time.monotonic() + ready_timeout
        for base_url in base_urls:
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
        yield Server(base_urls[0], process.pid, database_url, base_urls if len(base_urls) > 1 else ())
    finally:
        await _stop_group(process)
        errors = log_path.read_text(errors="replace").strip()
        if errors:
            print(f"(uvicorn's log, {log_path}):\n{errors[-2000:]}", file=sys.stderr)
        else:
            log_path.unlink(missing_ok=True)


async def _stop_group(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM to every app process, and wait until each has exited (its database connections closed:
    a `CREATE DATABASE ... TEMPLATE` of the benchmark's database may follow); SIGKILL after 20 s."""
    members = descendants(process.pid, process_table())
    with suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    deadline = time.monotonic() + 20
    while any(_alive(pid) for pid in members) and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    if any(_alive(pid) for pid in members):
        with suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
    await asyncio.to_thread(process.wait, 5)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A child of ours that has exited stays a zombie until reaped: count it as gone.
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


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
    """The project's fake of Stripe's API (`python -m telehealth.devtools.stripe_stand_in --port N`, no webhook URL: it sends
    no events) in a subprocess of its own, so its CPU is neither the app's nor the load generator's.
    Yields its base URL and pid."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "telehealth.devtools.stripe_stand_in", "--port", str(port)],
        cwd=PROJECT_ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
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
