"""Where the files that ship with the code live: templates, migrations and static files.

In a checkout (and an editable install) they are the top-level `templates/` and `migrations/` folders next
to `telehealth/`. A built wheel carries them inside the package as `telehealth/_templates` and
`telehealth/_migrations` (pyproject.toml's package-dir mapping), because site-packages has no project
folder around the package. The packaged copy is looked for first, so an installed wheel never reads a stray
`templates/` lying next to it in site-packages."""

from __future__ import annotations

from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent


def bundled_dir(name: str) -> Path:
    """`name` (templates, migrations) inside the installed package, else the checkout's top-level folder."""
    packaged = PACKAGE_DIR / f"_{name}"
    return packaged if packaged.is_dir() else PACKAGE_DIR.parent / name


TEMPLATES_DIR = bundled_dir("templates")
MIGRATIONS_DIR = bundled_dir("migrations")
STATIC_DIR = PACKAGE_DIR / "static"
