"""The built wheel is the whole service: templates, migrations, static files, the Stripe stand-in the demo
imports and the `telehealth` console script, and it migrates a database from site-packages with no
checkout around it. Builds the real wheel (`pip wheel`, a few seconds); marked `packaging`, CI runs it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
import uuid
import zipfile
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from telehealth.db.engine import async_database_url
from telehealth.settings import PROJECT_ROOT
from tests.conftest import _with_database

pytestmark = pytest.mark.packaging


def _pyproject() -> dict:
    return tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())


def test_every_package_under_telehealth_is_listed_for_the_wheel():
    listed = set(_pyproject()["tool"]["setuptools"]["packages"])
    found = {".".join(init.parent.relative_to(PROJECT_ROOT).parts) for init in (PROJECT_ROOT / "telehealth").rglob("__init__.py")}
    assert found - listed == set(), "add these to [tool.setuptools] packages in pyproject.toml"


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    # Built from a copy, so the checkout gets no build/ or egg-info and two runs never share one.
    source = tmp_path_factory.mktemp("source")
    for name in ("telehealth", "templates", "migrations"):
        shutil.copytree(PROJECT_ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(PROJECT_ROOT / "pyproject.toml", source)
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), str(source)], check=True, timeout=180)
    [built] = out.glob("telehealth-*.whl")
    return built


def test_the_wheel_carries_templates_migrations_static_files_and_the_stripe_stand_in(wheel: Path):
    names = set(zipfile.ZipFile(wheel).namelist())
    checkout = (
        {
            "telehealth/_templates/" + str(path.relative_to(PROJECT_ROOT / "templates"))
            for path in (PROJECT_ROOT / "templates").rglob("*")
            if path.is_file() and "__pycache__" not in path.parts
        }
        | {
            "telehealth/_migrations/" + str(path.relative_to(PROJECT_ROOT / "migrations"))
            for path in (PROJECT_ROOT / "migrations").rglob("*")
            if path.is_file() and "__pycache__" not in path.parts
        }
        | {"telehealth/static/" + path.name for path in (PROJECT_ROOT / "telehealth" / "static").iterdir()}
    )
    assert checkout - names == set()
    assert {
        "telehealth/_templates/base.html",
        "telehealth/_templates/email/verify_email/subject.txt",
        "telehealth/_migrations/env.py",
        "telehealth/_migrations/script.py.mako",
        "telehealth/devtools/stripe_stand_in.py",
        "telehealth/static/app.css",
    } <= names
    assert any(name.startswith("telehealth/_migrations/versions/") and name.endswith(".py") for name in names)
    assert not any(name.startswith("tests/") for name in names)

    dist_info = next(name.split("/")[0] for name in names if name.endswith(".dist-info/METADATA"))
    entry_points = zipfile.ZipFile(wheel).read(f"{dist_info}/entry_points.txt").decode()
    assert "[console_scripts]" in entry_points and "telehealth = telehealth.serve:main_cli" in entry_points
    requires = [
        line for line in zipfile.ZipFile(wheel).read(f"{dist_info}/METADATA").decode().splitlines() if line.startswith("Requires-Dist:")
    ]
    for needed in ("msgspec", "click", "email-validator", "icalendar", "alembic"):
        assert any(line.split()[1].lower().startswith(needed) for line in requires), needed


async def test_the_installed_wheel_migrates_a_database_through_its_console_script(wheel: Path, tmp_path: Path, database_url: str):
    # Installed into a bare folder (--no-deps: this interpreter has the dependencies), run from a folder with
    # no checkout in it, so nothing but the wheel's own files can be found.
    site = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "-q", "--target", str(site), str(wheel)],
        check=True,
        timeout=120,
    )
    name = f"telehealth_wheel_{uuid.uuid4().hex[:8]}"
    admin = create_async_engine(async_database_url(database_url), isolation_level="AUTOCOMMIT")
    async with admin.connect() as connection:
        await connection.execute(text(f'CREATE DATABASE "{name}"'))
    environment = {**os.environ, "PYTHONPATH": str(site), "DATABASE_URL": _with_database(database_url, name), "APP_ENV": "development"}
    environment.pop("PYTHONSAFEPATH", None)
    run = tmp_path / "elsewhere"
    run.mkdir()
    try:
        where = subprocess.run(
            [sys.executable, "-c", "import telehealth.bundled as b; print(b.__file__); print(b.TEMPLATES_DIR); print(b.MIGRATIONS_DIR)"],
            cwd=run,
            env=environment,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        ).stdout.split()
        assert all(line.startswith(str(site)) for line in where), where
        upgraded = subprocess.run(
            [str(site / "bin" / "telehealth"), "db", "upgrade"], cwd=run, env=environment, capture_output=True, text=True, timeout=120
        )
        assert upgraded.returncode == 0, upgraded.stderr[-2000:]
        assert "Database schema is current." in upgraded.stdout
        check = create_async_engine(async_database_url(environment["DATABASE_URL"]))
        async with check.connect() as connection:
            assert await connection.scalar(text("SELECT count(*) FROM alembic_version")) == 1
        await check.dispose()
    finally:
        async with admin.connect() as connection:
            await connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await admin.dispose()


def test_the_lock_file_pins_what_pyproject_pins():
    """CI installs from requirements.lock: a dependency changed in pyproject.toml without refreshing the lock
    (`pip-compile`, docs/operations.md) would test something other than what is declared."""
    project = _pyproject()["project"]
    declared = [*project["dependencies"], *project["optional-dependencies"]["dev"]]
    locked = {
        line.split("==")[0].lower().replace("_", "-").replace(".", "-"): line.split("==")[1].split()[0]
        for line in (PROJECT_ROOT / "requirements.lock").read_text().splitlines()
        if "==" in line and not line.startswith((" ", "#"))
    }
    for requirement in declared:
        name, version = requirement.split("==")
        name = name.split("[")[0].lower().replace("_", "-").replace(".", "-")
        assert locked.get(name) == version, f"{name}=={version} in pyproject.toml, {locked.get(name)} in requirements.lock"
