"""The entry lists every area's tables and jobs (telehealth/models.py, telehealth/jobs.py), as routes.py lists
every controller: the base packages know no area, so a module left out of these lists is never loaded."""

from __future__ import annotations

from pathlib import Path

import telehealth
from telehealth.jobs import JOB_MODULES
from telehealth.models import MODEL_MODULES

PACKAGE = Path(telehealth.__file__).parent


def _area_modules(name: str) -> set[str]:
    return {f"telehealth.{path.parent.name}.{name}" for path in PACKAGE.glob(f"*/{name}.py")}


def test_every_models_module_is_in_the_entrys_table() -> None:
    assert {module.__name__ for module in MODEL_MODULES} == _area_modules("models")


def test_every_jobs_module_is_in_the_entrys_table() -> None:
    assert {module.__name__ for module in JOB_MODULES} == _area_modules("jobs")
