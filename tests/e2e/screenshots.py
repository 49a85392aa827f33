"""Screenshots for people to look at (issue 23): a page at a desktop and a phone size under
test-artifacts/screenshots/, and at phone width nothing may run off the side."""

from __future__ import annotations

from pathlib import Path

from playwright.async_api import Page

SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
SIZES = {"1280": (1280, 800), "390": (390, 844)}  # a desktop and a phone, as issue 23's walk-through used


async def save_screenshots(page: Page, name: str) -> None:
    """`name`-1280.png and `name`-390.png (full page); fails when the page is wider than either screen. The
    page is left at 1280x800."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    for label, (width, height) in SIZES.items():
        await page.set_viewport_size({"width": width, "height": height})
        await page.screenshot(path=str(SCREENSHOTS / f"{name}-{label}.png"), full_page=True)
        overflow = await page.evaluate("() => document.scrollingElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"{name} is {overflow}px wider than a {width}px screen"
    await page.set_viewport_size({"width": 1280, "height": 800})
