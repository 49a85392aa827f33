"""TEMPLATE_AUTO_RELOAD: outside production a page shows its template's edit on the next render unless the setting
turns the check off (the benchmarks do); production never checks."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from litestar.plugins.jinja import JinjaTemplateEngine

from telehealth.settings import Settings, load_settings
from telehealth.templating import configure_template_engine


def _rendered_after_an_edit(tmp_path: Path, settings: Settings) -> str:
    page = tmp_path / "page.html"
    page.write_text("before")
    engine = JinjaTemplateEngine(directory=tmp_path)
    configure_template_engine(engine, settings)
    assert engine.get_template("page.html").render() == "before"
    page.write_text("after")
    stat = page.stat()
    os.utime(page, (stat.st_atime, stat.st_mtime + 5))  # a later mtime even on a coarse clock
    return str(engine.get_template("page.html").render())


@pytest.mark.parametrize(
    ("environment", "auto_reload", "shown"),
    [
        ("development", None, "after"),
        ("development", False, "before"),
        ("production", None, "before"),
        ("production", True, "after"),
    ],
)
def test_an_edited_template_shows_only_where_templates_reload(
    tmp_path: Path, environment: str, auto_reload: bool | None, shown: str
) -> None:
    settings = Settings(environment=environment, template_auto_reload=auto_reload)
    assert _rendered_after_an_edit(tmp_path, settings) == shown


def test_the_setting_is_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEMPLATE_AUTO_RELOAD", "false")
    assert load_settings().reloads_templates is False
    monkeypatch.delenv("TEMPLATE_AUTO_RELOAD")
    assert load_settings().template_auto_reload is None
