"""A page's Template says it is HTML (telehealth/templating.py's after_request hook), so Litestar does not work
it out from the file name on each render; the answer's Content-Type is what it was."""

from __future__ import annotations

from pathlib import Path

from litestar import Litestar, Response, get
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.response import Template
from litestar.template.config import TemplateConfig
from litestar.testing import AsyncTestClient

from telehealth.templating import pages_are_html


async def test_pages_say_html_and_nothing_else_changes(tmp_path: Path) -> None:
    (tmp_path / "page.html").write_text("<p>{{ word }}</p>")
    (tmp_path / "note.txt").write_text("{{ word }}")
    made: list[Response[object]] = []

    async def hook(response: Response[object]) -> Response[object]:
        made.append(await pages_are_html(response))
        return made[-1]

    @get("/page", sync_to_thread=False)
    def page() -> Template:
        return Template("page.html", context={"word": "hi"})

    @get("/note", sync_to_thread=False)
    def note() -> Template:
        return Template("note.txt", context={"word": "hi"})

    @get("/data", sync_to_thread=False)
    def data() -> dict[str, str]:
        return {"word": "hi"}

    app = Litestar([page, note, data], after_request=hook, template_config=TemplateConfig(directory=tmp_path, engine=JinjaTemplateEngine))
    async with AsyncTestClient(app) as client:
        answers = [await client.get(path) for path in ("/page", "/note", "/data")]
    assert [answer.headers["content-type"] for answer in answers] == [
        "text/html; charset=utf-8",
        "text/plain; charset=utf-8",
        "application/json",
    ]
    assert [response.media_type for response in made] == ["text/html", None, "application/json"]
    assert answers[0].text == "<p>hi</p>"
