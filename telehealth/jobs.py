"""Every area's background work, in one list (as routes.py lists every controller). Importing a jobs module
registers its handlers with the outbox (`@job_handler("area.kind")`, `run_every`): the outbox knows job kinds,
not areas. The app (asgi.py), the command line (cli.py) and the tests import this module before any job is
enqueued or run.

A new area's jobs.py goes here; tests/unit/system/test_entry_tables.py fails until it does."""

from telehealth.accounts import jobs as accounts_jobs
from telehealth.audit import jobs as audit_jobs
from telehealth.billing import jobs as billing_jobs
from telehealth.clinicians import jobs as clinicians_jobs
from telehealth.dosing import jobs as dosing_jobs
from telehealth.notifications import jobs as notifications_jobs
from telehealth.outbox import jobs as outbox_jobs
from telehealth.scheduling import jobs as scheduling_jobs
from telehealth.system import jobs as system_jobs
from telehealth.waitlist import jobs as waitlist_jobs

JOB_MODULES = (
    accounts_jobs,
    audit_jobs,
    billing_jobs,
    clinicians_jobs,
    dosing_jobs,
    notifications_jobs,
    outbox_jobs,
    scheduling_jobs,
    system_jobs,
    waitlist_jobs,
)
