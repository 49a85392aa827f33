"""The one ordered list of controllers: a reader finds every URL here."""

from telehealth.accounts.api import AccountsApiController, PatientRecordApiController
from telehealth.accounts.pages import AccountPagesController
from telehealth.billing.api import BillingApiController, StripeWebhookController
from telehealth.billing.pages import BillingPagesController, CoordinatorBillingPagesController
from telehealth.booking.api import BookingApiController
from telehealth.booking.pages import BookingPagesController, FollowUpPagesController
from telehealth.care_teams.api import CareTeamApiController
from telehealth.care_teams.pages import CareTeamPagesController
from telehealth.clinicians.api import ClinicianApiController
from telehealth.clinicians.pages import ClinicianPagesController
from telehealth.devtools.clock_pages import DemoClockController
from telehealth.dosing.api import DosingApiController, PlanDosingApiController, SitterApiController, SitterLinkApiController
from telehealth.dosing.pages import DosingPagesController, PlanDosingPagesController
from telehealth.dosing.plan_changes_api import PlanChangeApiController
from telehealth.dosing.plan_changes_pages import PlanChangePagesController
from telehealth.dosing.reassessment_api import ReassessmentApiController
from telehealth.dosing.reassessment_pages import ReassessmentPagesController
from telehealth.dosing.sitter_checks_api import SitterVerificationApiController
from telehealth.dosing.sitter_checks_pages import SitterVerificationPagesController
from telehealth.dosing.sitter_pages import SitterPagesController
from telehealth.export.pages import RecordPagesController
from telehealth.intake.api import IntakeApiController, StaffIntakeApiController
from telehealth.intake.pages import IntakePagesController
from telehealth.messages.pages import MessagePagesController
from telehealth.notes.pages import NotePagesController
from telehealth.notifications.pages import DevMailboxController
from telehealth.outcomes.pages import OutcomePagesController
from telehealth.patient_chart.pages import PatientChartPagesController
from telehealth.portal.pages import PortalPagesController
from telehealth.prescribing.api import (
    EncounterApiController,
    PatientShipmentsApiController,
    PharmacyApiController,
    PlanApiController,
)
from telehealth.prescribing.basis_api import EvaluationApiController
from telehealth.prescribing.basis_pages import BasisPagesController
from telehealth.prescribing.pages import EncounterPagesController, PlanPagesController
from telehealth.prescribing.pharmacy_pages import PharmacyPagesController, ShipmentPagesController
from telehealth.prescribing.pharmacy_staff_api import PharmacyStaffApiController
from telehealth.prescribing.pharmacy_staff_pages import PharmacistPagesController
from telehealth.scheduling.api import SchedulingApiController
from telehealth.scheduling.hours_pages import ClinicianSchedulePagesController
from telehealth.scheduling.pages import VideoPagesController
from telehealth.scheduling.video_room import VideoRoomSocketController
from telehealth.system.api import HealthController
from telehealth.waitlist.api import InvitationApiController, WaitlistApiController
from telehealth.waitlist.pages import WaitlistPagesController

ROUTE_HANDLERS = [
    HealthController,  # /health, /ready
    AccountsApiController,  # /api/v1/auth/...
    PatientRecordApiController,  # /api/v1/patients/{patient_id}
    CareTeamApiController,  # /api/v1/patients/{patient_id}/care-team|break-glass, /api/v1/break-glass[/{id}/review]
    CareTeamPagesController,  # /patients/{id}/care-team|break-glass, /coordinator/care-teams, /coordinator/break-glass
    AccountPagesController,  # /sign-in, /sign-out, /password/..., /account/...
    PortalPagesController,  # /, /patient, /prescriber, /therapist, /pharmacist, /coordinator
    WaitlistApiController,  # /api/v1/waitlist, /api/v1/waitlist/invitations, /api/v1/waitlist/states
    InvitationApiController,  # /api/v1/invitations/accept
    WaitlistPagesController,  # /waitlist, /waitlist/entry, /invitations/accept, /terms, /coordinator/waitlist
    ClinicianApiController,  # /api/v1/clinicians, /api/v1/clinicians/{id}[/profile|/licenses/{id}|/dea-registrations/{id}
    #   |/special-registrations/{id}]
    ClinicianPagesController,  # /coordinator/clinicians (credentials: add, renew, remove)
    PharmacistPagesController,  # /coordinator/pharmacists (each pharmacist's pharmacy)
    IntakeApiController,  # /api/v1/intake, /api/v1/intake/steps/{step}, /api/v1/intake/consents, /api/v1/intake/submit
    StaffIntakeApiController,  # /api/v1/patients/{patient_id}/intake, /api/v1/escalations
    IntakePagesController,  # /intake, /intake/{step}, /intake/result, /staff/patients/{id}/intake, /escalations
    StripeWebhookController,  # /api/v1/billing/stripe/webhook (signed by Stripe; no session, no CSRF)
    BillingApiController,  # /api/v1/billing/policy, /api/v1/billing/.../checkout, /statement, /payments/{id}/refunds, /daily-totals
    BillingPagesController,  # /billing, /billing/.../pay, /billing/return, /billing/payments/{id}/receipt, /billing/superbill
    CoordinatorBillingPagesController,  # /coordinator/billing
    EncounterApiController,  # /api/v1/appointments/{id}/encounter, /api/v1/encounters/{id}[/acknowledgements|/decision|/plans]
    PlanApiController,  # /api/v1/plans/{id}[/sign]
    PlanChangeApiController,  # /api/v1/plans/{id}/pause|resume|discontinue, /api/v1/batches/{id}/release (dosing's rules)
    PharmacyApiController,  # /api/v1/pharmacy/queue, /api/v1/pharmacy/batches/{id}[/accept|reject|fill|ship|deliver] (own pharmacy only)
    PharmacyStaffApiController,  # /api/v1/pharmacies, /api/v1/pharmacists, /api/v1/pharmacists/{id}/pharmacy (coordinators)
    PatientShipmentsApiController,  # /api/v1/my/shipments
    EncounterPagesController,  # /appointments/{id}/encounter (POST, from the calendar), /encounters/{id}[/flags|/decision|/plans]
    PlanPagesController,  # /plans/{id}[/sign]
    PlanChangePagesController,  # /plans/{id}/pause|resume|discontinue, /plans/{id}/batches/{batch_id}/release (dosing's rules)
    PharmacyPagesController,  # /pharmacy, /pharmacy/batches/{id}/accept|reject|fill|ship|deliver (own pharmacy only)
    ShipmentPagesController,  # /shipments (the patient's)
    ReassessmentApiController,  # /api/v1/reassessment/questionnaires (the patient's PHQ-9 and GAD-7 again, when due)
    ReassessmentPagesController,  # /reassessment (the same, as a page; then baseline vs now and the way to book)
    EvaluationApiController,  # /api/v1/patients/{id}/in-person-evaluations (the prescribing basis after the flexibilities end)
    BasisPagesController,  # /patients/{id}/in-person-evaluations, /coordinator/prescribing-basis[.csv]
    #   (patients without a basis after the date)
    SitterApiController,  # /api/v1/my/sitters[/{id}/remove|/resend]
    DosingApiController,  # /api/v1/my/dosing[/sessions[/{id}[/reschedule|/cancel|/check-in|/unlock|/report]]|/loss|/next-batch]
    SitterLinkApiController,  # /api/v1/sitter-links/{token}[/agreement|/decline|/excuse|/presence|/end|/withdraw] (the token is the key)
    SitterVerificationApiController,  # /api/v1/sitters/unverified, /api/v1/sitters/{id}/verification
    #   (coordinators' call with each new sitter)
    PlanDosingApiController,  # /api/v1/plans/{id}/dosing, /api/v1/plans/{id}/review, /api/v1/plans/{id}/inventory-flags/{id}/resolve
    DosingPagesController,  # /dosing, /dosing/sessions[/{id}[/check-in|/unlock|/report|/reschedule|/cancel]],
    #   /dosing/sitters, /dosing/loss, /dosing/next-batch
    SitterPagesController,  # /sitter/{token}[/agreement|/decline|/excuse|/presence|/end|/withdraw] (the sitter's own link)
    SitterVerificationPagesController,  # /coordinator/sitters[/{id}/verification] (sitters waiting for their call)
    PlanDosingPagesController,  # /prescriber/dosing, /plans/{id}/dosing, /plans/{id}/review, /plans/{id}/inventory-flags/{id}/resolve
    MessagePagesController,  # /messages, /messages/waiting, /patients/{id}/messages
    NotePagesController,  # /patients/{id}/notes (the care team's clinical notes)
    RecordPagesController,  # /record[/fhir.json], /patients/{id}/record[/fhir.json] (transfer of care, audited)
    OutcomePagesController,  # /outcomes, /patients/{id}/outcomes, /coordinator/outcomes[.csv]
    PatientChartPagesController,  # /patients/{id} (the care team's page of one patient: summary, timeline, flags, plan,
    #   sessions, messages, notes, scores, record)
    SchedulingApiController,  # /api/v1/slots, /api/v1/appointments/{id}/visit[/attest], /api/v1/availability/...
    BookingApiController,  # /api/v1/appointments, /api/v1/appointments/{id}/cancel|reschedule|no-show, /api/v1/follow-ups
    VideoPagesController,  # /appointments/{id}/join, /appointments/{id}/visit/attest, /rooms/{room_token}
    VideoRoomSocketController,  # /rooms/{room_token}/signal (WebSocket: the room's signalling)
    BookingPagesController,  # /appointments, /appointments/book, /appointments/{id}/cancel|reschedule|change
    ClinicianSchedulePagesController,  # /clinician/calendar, /clinician/hours, /clinician/overrides
    FollowUpPagesController,  # /clinician/follow-ups, /clinician/follow-ups/{patient_id}
    DevMailboxController,  # /dev/mailbox (not in production)
    DemoClockController,  # /dev/clock (the demo's movable clock: staff, never in production)
]
