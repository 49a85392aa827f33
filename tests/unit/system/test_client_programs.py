"""pg_dump/pg_restore are chosen by the server's major version: the embedded package's own for the embedded
server, another version's only when it matches, and none (so the backup test skips, saying why) otherwise."""

from __future__ import annotations

from telehealth.db.embedded import client_program, embedded_bin_dir, program_major_version


def test_the_embedded_server_gets_the_programs_shipped_with_it():
    bin_dir = embedded_bin_dir()
    assert bin_dir is not None and (bin_dir / "postgres").is_file()
    server_major = program_major_version(bin_dir / "postgres")
    assert server_major is not None
    for name in ("pg_dump", "pg_restore"):
        assert client_program(name, server_major) == bin_dir / name


def test_a_program_of_another_major_version_is_never_chosen(tmp_path, monkeypatch):
    fake = tmp_path / "pg_dump"
    fake.write_text("#!/bin/sh\necho 'pg_dump (PostgreSQL) 7.4.1'\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    assert program_major_version(fake) == 7
    assert client_program("pg_dump", 7) == fake  # the one on PATH, when it matches
    assert client_program("pg_dump", 99) is None  # nothing of that version anywhere
