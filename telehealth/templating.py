"""Jinja2 globals and filters for pages: clinic name, role navigation, times in the viewer's zone."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from litestar import Response
from litestar.enums import MediaType
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.response import Template

from telehealth.devtools.demo_clock import demo_clock_notice
from telehealth.lib.field_words import field_words
from telehealth.lib.us_states import US_STATES
from telehealth.settings import Settings


async def pages_are_html(response: Response[Any]) -> Response[Any]:
    """The app's after_request hook: a page's Template says it is HTML. Left unsaid, Litestar works it out from the
    template's file name on every render (pathlib and mimetypes, about 30 us of CPU a page)."""
    if isinstance(response, Template) and not response.media_type and str(response.template_name).endswith(".html"):
        response.media_type = MediaType.HTML
    return response


def configure_template_engine(engine: JinjaTemplateEngine, settings: Settings) -> None:
    env = engine.engine
    env.auto_reload = settings.reloads_templates  # production never stats template files on each render
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
