"""Every table, in one list (as routes.py lists every controller): importing this module makes SQLModel.metadata
complete. Alembic (migrations/env.py) and the tests (tests/conftest.py) read the metadata through it.

The base packages (db, lib, outbox, system) know no area; the entry does. A new area's models.py goes here;
tests/unit/system/test_entry_tables.py fails until it does."""

from telehealth.accounts import models as accounts_models
from telehealth.audit import models as audit_models
from telehealth.billing import models as billing_models
from telehealth.clinicians import models as clinicians_models
from telehealth.devtools import models as devtools_models
from telehealth.dosing import models as dosing_models
from telehealth.intake import models as intake_models
from telehealth.messages import models as messages_models
from telehealth.notes import models as notes_models
from telehealth.notifications import models as notifications_models
from telehealth.outbox import models as outbox_models
from telehealth.prescribing import models as prescribing_models
from telehealth.scheduling import models as scheduling_models
from telehealth.system import models as system_models
from telehealth.waitlist import models as waitlist_models

MODEL_MODULES = (
    accounts_models,
    audit_models,
    billing_models,
    clinicians_models,
    devtools_models,
    dosing_models,
    intake_models,
    messages_models,
    notes_models,
    notifications_models,
    outbox_models,
    prescribing_models,
    scheduling_models,
    system_models,
    waitlist_models,
)
