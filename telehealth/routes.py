"""The one ordered list of controllers: a reader finds every URL here."""

from telehealth.accounts.api import AccountsApiController, PatientRecordApiController
from telehealth.accounts.pages import AccountPagesController
from telehealth.notifications.pages import DevMailboxController
from telehealth.portal.pages import PortalPagesController
from telehealth.system.api import HealthController

ROUTE_HANDLERS = [
    HealthController,  # /health, /ready
    AccountsApiController,  # /api/v1/auth/...
    PatientRecordApiController,  # /api/v1/patients/{patient_id}
    AccountPagesController,  # /sign-in, /sign-out, /password/..., /account/...
    PortalPagesController,  # /, /patient, /prescriber, /therapist, /pharmacist, /coordinator
    DevMailboxController,  # /dev/mailbox (not in production)
]
