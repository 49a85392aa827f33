"""The migration linter: every revision newer than the baseline in pyproject.toml ([tool.migration-lint]) is
rendered to SQL (`alembic upgrade <baseline>:head --sql`, no database needed) and must pass squawk with the
project's .squawk.toml: no plain CREATE INDEX on a table that already holds rows, constraints added NOT VALID,
and so on. Deployed revisions are not linted again (they cannot be rewritten)."""

from __future__ import annotations

import io
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory

from telehealth.settings import PROJECT_ROOT

NEW_REVISION = '''"""{message}"""

from alembic import op

revision = "{revision}"
down_revision = "{down_revision}"
branch_labels = None
depends_on = None


def upgrade() -> None:
{body}


def downgrade() -> None:
    op.drop_index("ix_job_kind_lint_sample", table_name="job")
'''
PLAIN_INDEX = '    op.create_index("ix_job_kind_lint_sample", "job", ["kind"])'
CONCURRENT_INDEX = """    with op.get_context().autocommit_block():
        op.create_index("ix_job_kind_lint_sample", "job", ["kind"], postgresql_concurrently=True, if_not_exists=True)"""


def _squawk() -> str:
    found = shutil.which("squawk") or str(Path(sys.executable).parent / "squawk")
    if not Path(found).exists():
        pytest.fail("squawk is not installed: pip install squawk-cli (a dev dependency in pyproject.toml)")
    return found


def baseline() -> str:
    return tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["tool"]["migration-lint"]["baseline"]


def rendered_sql(script_location: Path, revisions: str) -> str:
    """What `alembic upgrade <revisions> --sql` prints for the migrations in `script_location`."""
    output = io.StringIO()
    config = Config(toml_file=str(PROJECT_ROOT / "pyproject.toml"), output_buffer=output)
    config.set_main_option("script_location", str(script_location))
    command.upgrade(config, revisions, sql=True)
    return output.getvalue()


def lint(sql: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "migrations.sql"
    path.write_text(sql)
    return subprocess.run(
        [_squawk(), "--config", str(PROJECT_ROOT / ".squawk.toml"), "--reporter", "gcc", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )


def _with_new_revision(tmp_path: Path, body: str) -> tuple[Path, str]:
    """A copy of the migrations with one more revision on top of the current head."""
    scripts = tmp_path / "migrations"
    shutil.copytree(PROJECT_ROOT / "migrations", scripts, ignore=shutil.ignore_patterns("__pycache__"))
    [head] = ScriptDirectory(str(PROJECT_ROOT / "migrations")).get_heads()
    (scripts / "versions" / "29991231_9999_lint_sample.py").write_text(
        NEW_REVISION.format(message="a sample index on a table that holds rows", revision="9999_lint_sample", down_revision=head, body=body)
    )
    return scripts, head


def test_migrations_newer_than_the_baseline_pass_the_linter(tmp_path):
    known = {revision.revision for revision in ScriptDirectory(str(PROJECT_ROOT / "migrations")).walk_revisions()}
    assert baseline() in known, f"[tool.migration-lint] baseline {baseline()!r} is not a revision"
    sql = rendered_sql(PROJECT_ROOT / "migrations", f"{baseline()}:head")
    assert sql.startswith("SET lock_timeout")  # what every online migration runs first (migrations/env.py)
    result = lint(sql, tmp_path)
    assert result.returncode == 0, f"squawk refused a new migration:\n{result.stdout}{result.stderr}\n{sql}"


def test_a_plain_create_index_on_an_existing_table_fails_the_linter(tmp_path):
    scripts, head = _with_new_revision(tmp_path, PLAIN_INDEX)
    sql = rendered_sql(scripts, f"{head}:head")
    assert "CREATE INDEX ix_job_kind_lint_sample ON job (kind)" in sql
    result = lint(sql, tmp_path)
    assert result.returncode != 0
    assert "require-concurrent-index-creation" in result.stdout


def test_the_same_index_built_concurrently_outside_the_transaction_passes(tmp_path):
    scripts, head = _with_new_revision(tmp_path, CONCURRENT_INDEX)
    sql = rendered_sql(scripts, f"{head}:head")
    assert "CREATE INDEX CONCURRENTLY IF NOT EXISTS ix_job_kind_lint_sample ON job (kind)" in sql
    result = lint(sql, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


async def test_an_index_built_concurrently_migrates_online_and_each_revision_is_logged(database_url, tmp_path, caplog):
    """Through the app's own upgrade (telehealth/db/migrate.py): the autocommit block commits mid-way and still
    the session's migration lock and lock_timeout hold; each revision is logged as it is applied."""
    import logging

    from sqlalchemy import text
    from sqlalchemy.engine import make_url
    from sqlalchemy.ext.asyncio import create_async_engine

    from telehealth.db.engine import async_database_url, make_engine
    from telehealth.db.migrate import alembic_config, upgrade_database

    scripts, _head = _with_new_revision(tmp_path, CONCURRENT_INDEX)
    config = alembic_config()
    config.set_main_option("script_location", str(scripts))
    name = make_url(async_database_url(database_url)).database + "_lint"
    admin = create_async_engine(async_database_url(database_url), isolation_level="AUTOCOMMIT")
    async with admin.connect() as connection:
        await connection.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        await connection.execute(text(f'CREATE DATABASE "{name}"'))
    engine = make_engine(make_url(async_database_url(database_url)).set(database=name).render_as_string(hide_password=False))
    try:
        with caplog.at_level(logging.INFO, logger="telehealth.migrations"):
            await upgrade_database(engine, config=config)
        async with engine.connect() as connection:
            valid = await connection.scalar(text("SELECT indisvalid FROM pg_index WHERE indexrelid = 'ix_job_kind_lint_sample'::regclass"))
        assert valid is True
        applied = [r.getMessage() for r in caplog.records if r.name == "telehealth.migrations" and " applied " in r.getMessage()]
        revisions = list(ScriptDirectory(str(scripts)).walk_revisions())
        assert len(applied) == len(revisions)
        assert applied[-1].startswith("migration 9999_lint_sample applied (a sample index on a table that holds rows) in ")
    finally:
        await engine.dispose()
        async with admin.connect() as connection:
            await connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await admin.dispose()
