"""Jinja2 globals and filters for pages: clinic name, role navigation, times in the viewer's zone."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from litestar.plugins.jinja import JinjaTemplateEngine

from telehealth.devtools.demo_clock import demo_clock_notice
from telehealth.lib.field_words import field_words
from telehealth.lib.us_states import US_STATES
from telehealth.settings import Settings


def configure_template_engine(engine: JinjaTemplateEngine, settings: Settings) -> None:
    env = engine.engine
    env.auto_reload = not settings.is_production  # production never stats template files on each render
    env.globals["clinic_name"] = settings.clinic_name
    env.globals["is_production"] = settings.is_production
    env.globals["us_states"] = US_STATES
    env.filters["field_words"] = field_words
    env.globals["video_room_is_built_in"] = settings.video_room_is_built_in

    def demo_clock_banner(request: Any) -> str | None:
        """The banner's words while the demo clock is moved (devtools/demo_clock.py); None otherwise."""
        if not settings.demo_clock_enabled:
            return None
        return demo_clock_notice(request.app.state.clock, settings.clinic_timezone)

    env.globals["demo_clock_banner"] = demo_clock_banner

    def local_time(value: datetime | None, zone: str | None = None, fmt: str = "%a %d %b %Y, %H:%M %Z") -> str:
        if value is None:
            return ""
        return value.astimezone(ZoneInfo(zone or settings.clinic_timezone)).strftime(fmt)

    env.filters["local_time"] = local_time
