"""Every setting comes from the environment; one cached `get_settings()` serves the whole process.

docs/operations.md lists each variable. Clinical thresholds are clinic settings (DOMAIN.md marks them
*default*), so they live here rather than as constants in the services that apply them.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field
from datetime import date
from functools import lru_cache
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SECRET_KEY = "development-only-secret-key-change-me"


class SettingsError(ValueError):
    """A setting is missing or malformed; the message names the variable."""


def _env(name: str, default: str | None = None) -> str | None:
    value = os.environ.get(name)
    return default if value is None or value == "" else value


def _int(name: str, default: int) -> int:
    raw = _env(name)
    if raw is None:
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise SettingsError(f"{name} must be a whole number, got {raw!r}") from exc


def _bool(name: str, default: bool) -> bool:
    raw = _env(name)
    if raw is None:
        return default
    if raw.lower() in {"1", "true", "yes", "on"}:
        return True
    if raw.lower() in {"0", "false", "no", "off"}:
        return False
    raise SettingsError(f"{name} must be true or false, got {raw!r}")


def served_base_url(host: str, port: int) -> str:
    """Where `python app.py` answers on this machine: PUBLIC_BASE_URL's value when it is not set, so links
    in emails, the banner and the demo's Stripe stand-in follow HOST and PORT."""
    if host in {"", "0.0.0.0", "::"}:  # listening everywhere: this machine still answers on loopback
        host = "127.0.0.1"
    return f"http://{f'[{host}]' if ':' in host else host}:{port}"


def _date(name: str, default: date) -> date:
    raw = _env(name)
    if raw is None:
        return default
    try:
        return date.fromisoformat(raw.strip())
    except ValueError as exc:
        raise SettingsError(f"{name} must be a date like 2026-12-31, got {raw!r}") from exc


def _blood_pressure(name: str, default: tuple[int, int]) -> tuple[int, int]:
    raw = _env(name)
    if raw is None:
        return default
    try:
        systolic, diastolic = (int(part) for part in raw.split("/"))
    except ValueError as exc:
        raise SettingsError(f"{name} must look like 140/90, got {raw!r}") from exc
    return systolic, diastolic


# DOMAIN.md's safety envelope: the loosest value any clinic may set (the defaults below sit on it).
ENVELOPE_MAX_DOSE_MG = 400
ENVELOPE_MAX_SESSIONS = 12
ENVELOPE_MIN_HOURS_BETWEEN = 48
ENVELOPE_CHECKIN_VALID_MINUTES = 60
ENVELOPE_PDMP_VALID_HOURS = 24
ENVELOPE_BP_NEEDS_REVIEW = (140, 90)
ENVELOPE_BP_INELIGIBLE = (160, 100)
ENVELOPE_BP_URGENT = (180, 120)
ENVELOPE_MIN_OBSERVATION_MINUTES = 60  # the sitter's end and the patient's report come no earlier after unlock
MAX_OBSERVATION_MINUTES = 240  # a sanity bound, not a safety one: the end link and the report reminders assume hours


@dataclass(frozen=True)
class ClinicalThresholds:
    """DOMAIN.md's clinic-adjustable numbers. Blood pressures are (systolic, diastolic) in mmHg."""

    intake_bp_ineligible: tuple[int, int] = (160, 100)
    bp_needs_review: tuple[int, int] = (140, 90)
    bp_urgent: tuple[int, int] = (180, 120)
    review_age_over: int = 65
    max_dose_mg_per_session: int = 400
    max_sessions_per_plan: int = 12
    default_sessions_per_plan: int = 6
    min_hours_between_sessions: int = 48
    pdmp_check_valid_hours: int = 24
    checkin_valid_minutes: int = 60
    invitation_valid_days: int = 7
    bp_recheck_after_minutes: int = 5
    unlock_late_minutes: int = 120  # a session can still be unlocked this long after its time
    presence_link_minutes_before: int = 60
    report_reminder_hours: int = 24
    report_alert_hours: int = 48
    observation_minutes: int = 60  # after unlock: no end attestation or completion report earlier without a reason

    def check_envelope(self) -> None:
        """DOMAIN.md's safety envelope: settings may tighten the defaults, never loosen them, and the blood-
        pressure thresholds stay ordered. The first setting outside it stops the service, naming the bound."""
        caps = (
            ("MAX_DOSE_MG_PER_SESSION", self.max_dose_mg_per_session, 1, ENVELOPE_MAX_DOSE_MG),
            ("MAX_SESSIONS_PER_PLAN", self.max_sessions_per_plan, 1, ENVELOPE_MAX_SESSIONS),
            ("DEFAULT_SESSIONS_PER_PLAN", self.default_sessions_per_plan, 1, self.max_sessions_per_plan),
            ("MIN_HOURS_BETWEEN_SESSIONS", self.min_hours_between_sessions, ENVELOPE_MIN_HOURS_BETWEEN, 24 * 365),
            ("CHECKIN_VALID_MINUTES", self.checkin_valid_minutes, 1, ENVELOPE_CHECKIN_VALID_MINUTES),
            ("PDMP_CHECK_VALID_HOURS", self.pdmp_check_valid_hours, 1, ENVELOPE_PDMP_VALID_HOURS),
            ("OBSERVATION_MINUTES", self.observation_minutes, ENVELOPE_MIN_OBSERVATION_MINUTES, MAX_OBSERVATION_MINUTES),
        )
        for name, value, low, high in caps:
            if not low <= value <= high:
                raise SettingsError(f"{name}={value} is outside the safety envelope: it must be from {low} to {high}")
        pressures = (
            ("BP_NEEDS_REVIEW", self.bp_needs_review, ENVELOPE_BP_NEEDS_REVIEW),
            ("INTAKE_BP_INELIGIBLE", self.intake_bp_ineligible, ENVELOPE_BP_INELIGIBLE),
            ("BP_URGENT", self.bp_urgent, ENVELOPE_BP_URGENT),
        )
        for name, (systolic, diastolic), (top_systolic, top_diastolic) in pressures:
            if not (60 <= systolic <= top_systolic and 40 <= diastolic <= top_diastolic):
                raise SettingsError(
                    f"{name}={systolic}/{diastolic} is outside the safety envelope: it may be at most {top_systolic}/{top_diastolic} (and at least 60/40)"
                )
        for (lower_name, lower, _), (upper_name, upper, _) in zip(pressures, pressures[1:]):
            if not (lower[0] < upper[0] and lower[1] < upper[1]):
                raise SettingsError(
                    f"{lower_name}={lower[0]}/{lower[1]} must be below {upper_name}={upper[0]}/{upper[1]} "
                    "(needs review < ineligible at intake < urgent, in both numbers)"
                )

    @classmethod
    def from_env(cls) -> ClinicalThresholds:
        base = cls()
        return cls(
            intake_bp_ineligible=_blood_pressure("INTAKE_BP_INELIGIBLE", base.intake_bp_ineligible),
            bp_needs_review=_blood_pressure("BP_NEEDS_REVIEW", base.bp_needs_review),
            bp_urgent=_blood_pressure("BP_URGENT", base.bp_urgent),
            review_age_over=_int("REVIEW_AGE_OVER", base.review_age_over),
            max_dose_mg_per_session=_int("MAX_DOSE_MG_PER_SESSION", base.max_dose_mg_per_session),
            max_sessions_per_plan=_int("MAX_SESSIONS_PER_PLAN", base.max_sessions_per_plan),
            default_sessions_per_plan=_int("DEFAULT_SESSIONS_PER_PLAN", base.default_sessions_per_plan),
            min_hours_between_sessions=_int("MIN_HOURS_BETWEEN_SESSIONS", base.min_hours_between_sessions),
            pdmp_check_valid_hours=_int("PDMP_CHECK_VALID_HOURS", base.pdmp_check_valid_hours),
            checkin_valid_minutes=_int("CHECKIN_VALID_MINUTES", base.checkin_valid_minutes),
            invitation_valid_days=_int("INVITATION_VALID_DAYS", base.invitation_valid_days),
            bp_recheck_after_minutes=_int("BP_RECHECK_AFTER_MINUTES", base.bp_recheck_after_minutes),
            unlock_late_minutes=_int("UNLOCK_LATE_MINUTES", base.unlock_late_minutes),
            presence_link_minutes_before=_int("PRESENCE_LINK_MINUTES_BEFORE", base.presence_link_minutes_before),
            report_reminder_hours=_int("REPORT_REMINDER_HOURS", base.report_reminder_hours),
            report_alert_hours=_int("REPORT_ALERT_HOURS", base.report_alert_hours),
            observation_minutes=_int("OBSERVATION_MINUTES", base.observation_minutes),
        )


@dataclass(frozen=True)
class Settings:
    environment: str = "development"
    database_url: str | None = None
    embedded_data_dir: Path = PROJECT_ROOT / ".data" / "postgres-18"
    auto_migrate: bool = True
    seed_demo: bool = False  # load_settings: true for the embedded database, else only with SEED_DEMO=true
    smtp_url: str | None = None
    mail_from: str = "Care team <care@clinic.example>"
    stripe_api_key: str = "sk_test_placeholder"
    stripe_webhook_secret: str = "whsec_placeholder"
    stripe_api_base: str | None = None
    secret_key: str = DEFAULT_SECRET_KEY
    public_base_url: str = "http://127.0.0.1:8000"
    clinic_name: str = "Evergreen Home Program"
    clinic_timezone: str = "America/New_York"
    host: str = "127.0.0.1"
    port: int = 8000
    run_worker_in_process: bool = True
    session_idle_minutes: int = 30
    session_absolute_hours: int = 12
    login_lock_after_failures: int = 10
    login_lock_minutes: int = 15
    login_attempts_per_ip_per_15_min: int = 50
    waitlist_joins_per_ip_per_hour: int = 20
    late_cancel_fee_cents: int = 5000
    # Fees (integer cents): the first values of the clinic's billing policy, which coordinators then change.
    consult_fee_cents: int = 15000
    program_fee_cents: int = 115800
    integration_fee_cents: int = 7500
    no_show_fee_cents: int = 7500
    # The clinic's formulary for troche plans (mg per unit).
    troche_strengths_mg: str = "50,100,150,200"
    stripe_timeout_seconds: float = 10.0
    stripe_max_network_retries: int = 2
    # Superbill: CPT code per appointment type, and the clinic's details printed on it.
    cpt_codes: str = "consult=90792,reassessment=99214,integration=90837"
    clinic_address: str = "100 Main Street, Suite 200, Burlington, VT 05401"
    clinic_phone: str = "+1 802 555 0100"
    clinic_tax_id: str = "00-0000000"
    video_room_url_template: str = "{public_base_url}/rooms/{room_token}"
    # The built-in room's ICE servers: STUN/TURN URLs, comma-separated. TURN credentials are made per visit
    # from VIDEO_TURN_SECRET (coturn's use-auth-secret), so no long-lived password reaches a browser.
    video_ice_urls: str = ""
    video_turn_secret: str | None = None
    password_reset_valid_minutes: int = 30
    email_verification_valid_hours: int = 48
    step_up_valid_minutes: int = 5
    job_max_attempts: int = 8
    job_lease_seconds: int = 120
    max_request_body_bytes: int = 1_000_000
    # The last day an audio-video visit alone is a basis for prescribing (the DEA's telemedicine flexibilities).
    telemedicine_flexibilities_until: date = date(2026, 12, 31)
    metrics_token: str | None = None  # /metrics answers this bearer token; without one, only loopback clients
    # A coordinator's short call with each new sitter before their first session (DOMAIN.md: default on).
    sitter_verification_required: bool = True
    thresholds: ClinicalThresholds = field(default_factory=ClinicalThresholds)

    @property
    def is_production(self) -> bool:
        return self.environment == "production"

    @property
    def uses_tls(self) -> bool:
        return self.public_base_url.startswith("https://")

    @property
    def troche_strengths(self) -> tuple[int, ...]:
        return tuple(int(part) for part in self.troche_strengths_mg.split(",") if part.strip().isdigit())

    @property
    def cpt_code_by_type(self) -> dict[str, str]:
        pairs = (item.split("=", 1) for item in self.cpt_codes.split(",") if "=" in item)
        return {kind.strip(): code.strip() for kind, code in pairs}

    @property
    def video_room_is_built_in(self) -> bool:
        """The built-in room (which records who joined when) rather than an external video service."""
        return self.video_room_url_template.startswith("{public_base_url}/rooms/")

    @property
    def video_ice_url_list(self) -> tuple[str, ...]:
        return tuple(url.strip() for url in self.video_ice_urls.split(",") if url.strip())

    @property
    def clinic_zone(self) -> ZoneInfo:
        return ZoneInfo(self.clinic_timezone)

    def validate(self) -> None:
        """Refuse settings that would be unsafe or cannot work; called at start."""
        if self.environment not in {"development", "test", "production"}:
            raise SettingsError("APP_ENV must be development, test or production")
        self.thresholds.check_envelope()  # development and production alike
        try:
            ZoneInfo(self.clinic_timezone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise SettingsError(f"CLINIC_TIMEZONE {self.clinic_timezone!r} is not an IANA time zone") from exc
        for url in self.video_ice_url_list:
            if not url.startswith(("stun:", "stuns:", "turn:", "turns:")):
                raise SettingsError(f"VIDEO_ICE_URLS: {url!r} is not a stun:, stuns:, turn: or turns: URL")
            if url.startswith("turn") and not self.video_turn_secret:
                raise SettingsError("VIDEO_TURN_SECRET is required when VIDEO_ICE_URLS names a TURN server")
        if self.is_production:
            if self.secret_key == DEFAULT_SECRET_KEY or len(self.secret_key) < 32:
                raise SettingsError("SECRET_KEY must be set to a random value of 32+ characters in production")
            if not self.database_url:
                raise SettingsError("DATABASE_URL is required in production (the embedded database is for demos)")
            if not self.smtp_url:
                raise SettingsError("SMTP_URL is required in production (the database mailbox is for development)")
            if self.stripe_api_key == "sk_test_placeholder" or self.stripe_webhook_secret == "whsec_placeholder":
                raise SettingsError("STRIPE_API_KEY and STRIPE_WEBHOOK_SECRET are required in production")
            # Links in emails, the Origin check and the __Host- cookies all need the real https address.
            if not self.public_base_url.startswith("https://"):
                raise SettingsError(
                    f"PUBLIC_BASE_URL must be set to the service's https:// address in production (got {self.public_base_url!r})"
                )


def demo_secret_key(data_dir: Path) -> str:
    """The embedded demo's SECRET_KEY: random, made on the first run and kept in `data_dir/secret-key`
    (owner-only), so sessions and CSRF tokens survive a restart but no one can sign them with a key printed
    in the source."""
    path = data_dir / "secret-key"
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48)
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process made it first: use theirs
        return path.read_text().strip()
    with os.fdopen(descriptor, "w") as file:
        file.write(key)
    return key


def load_settings() -> Settings:
    """Read the environment now (tests call this after changing variables)."""
    defaults = Settings()
    environment = _env("APP_ENV", defaults.environment) or defaults.environment
    database_url = _env("DATABASE_URL")
    embedded_data_dir = Path(_env("EMBEDDED_DATA_DIR", str(defaults.embedded_data_dir)) or "")
    # The embedded demo (no DATABASE_URL, not production) signs with a random key of its own, kept beside its
    # data; anything else uses SECRET_KEY (production refuses the built-in default).
    embedded_demo = database_url is None and environment != "production"
    secret_key = _env("SECRET_KEY") or (demo_secret_key(embedded_data_dir.parent) if embedded_demo else defaults.secret_key)
    settings = Settings(
        environment=environment,
        database_url=database_url,
        embedded_data_dir=embedded_data_dir,
        # Production migrates as a release step (`db upgrade`), never as each instance starts.
        auto_migrate=_bool("AUTO_MIGRATE", environment != "production"),
        # Demo accounts with known passwords go into the embedded database only, unless SEED_DEMO=true says so.
        seed_demo=_bool("SEED_DEMO", database_url is None),
        smtp_url=_env("SMTP_URL"),
        mail_from=_env("MAIL_FROM", defaults.mail_from) or defaults.mail_from,
        stripe_api_key=_env("STRIPE_API_KEY", defaults.stripe_api_key) or defaults.stripe_api_key,
        stripe_webhook_secret=_env("STRIPE_WEBHOOK_SECRET", defaults.stripe_webhook_secret)
        or defaults.stripe_webhook_secret,
        stripe_api_base=_env("STRIPE_API_BASE"),
        secret_key=secret_key,
        public_base_url=(
            _env("PUBLIC_BASE_URL") or served_base_url(_env("HOST", defaults.host) or defaults.host, _int("PORT", defaults.port))
        ).rstrip("/"),
        clinic_name=_env("CLINIC_NAME", defaults.clinic_name) or defaults.clinic_name,
        metrics_token=_env("METRICS_TOKEN"),
        clinic_timezone=_env("CLINIC_TIMEZONE", defaults.clinic_timezone) or defaults.clinic_timezone,
        host=_env("HOST", defaults.host) or defaults.host,
        port=_int("PORT", defaults.port),
        run_worker_in_process=_bool("RUN_WORKER_IN_PROCESS", defaults.run_worker_in_process),
        sitter_verification_required=_bool("SITTER_VERIFICATION_REQUIRED", defaults.sitter_verification_required),
        session_idle_minutes=_int("SESSION_IDLE_MINUTES", defaults.session_idle_minutes),
        session_absolute_hours=_int("SESSION_ABSOLUTE_HOURS", defaults.session_absolute_hours),
        login_lock_after_failures=_int("LOGIN_LOCK_AFTER_FAILURES", defaults.login_lock_after_failures),
        login_lock_minutes=_int("LOGIN_LOCK_MINUTES", defaults.login_lock_minutes),
        login_attempts_per_ip_per_15_min=_int(
            "LOGIN_ATTEMPTS_PER_IP_PER_15_MIN", defaults.login_attempts_per_ip_per_15_min
        ),
        password_reset_valid_minutes=_int("PASSWORD_RESET_VALID_MINUTES", defaults.password_reset_valid_minutes),
        email_verification_valid_hours=_int("EMAIL_VERIFICATION_VALID_HOURS", defaults.email_verification_valid_hours),
        step_up_valid_minutes=_int("STEP_UP_VALID_MINUTES", defaults.step_up_valid_minutes),
        waitlist_joins_per_ip_per_hour=_int("WAITLIST_JOINS_PER_IP_PER_HOUR", defaults.waitlist_joins_per_ip_per_hour),
        late_cancel_fee_cents=_int("LATE_CANCEL_FEE_CENTS", defaults.late_cancel_fee_cents),
        consult_fee_cents=_int("CONSULT_FEE_CENTS", defaults.consult_fee_cents),
        program_fee_cents=_int("PROGRAM_FEE_CENTS", defaults.program_fee_cents),
        integration_fee_cents=_int("INTEGRATION_FEE_CENTS", defaults.integration_fee_cents),
        no_show_fee_cents=_int("NO_SHOW_FEE_CENTS", defaults.no_show_fee_cents),
        stripe_timeout_seconds=float(_env("STRIPE_TIMEOUT_SECONDS", str(defaults.stripe_timeout_seconds)) or defaults.stripe_timeout_seconds),
        stripe_max_network_retries=_int("STRIPE_MAX_NETWORK_RETRIES", defaults.stripe_max_network_retries),
        cpt_codes=_env("CPT_CODES", defaults.cpt_codes) or defaults.cpt_codes,
        troche_strengths_mg=_env("TROCHE_STRENGTHS_MG", defaults.troche_strengths_mg) or defaults.troche_strengths_mg,
        clinic_address=_env("CLINIC_ADDRESS", defaults.clinic_address) or defaults.clinic_address,
        clinic_phone=_env("CLINIC_PHONE", defaults.clinic_phone) or defaults.clinic_phone,
        clinic_tax_id=_env("CLINIC_TAX_ID", defaults.clinic_tax_id) or defaults.clinic_tax_id,
        video_room_url_template=_env("VIDEO_ROOM_URL_TEMPLATE", defaults.video_room_url_template) or defaults.video_room_url_template,
        video_ice_urls=_env("VIDEO_ICE_URLS", defaults.video_ice_urls) or defaults.video_ice_urls,
        video_turn_secret=_env("VIDEO_TURN_SECRET"),
        job_max_attempts=_int("JOB_MAX_ATTEMPTS", defaults.job_max_attempts),
        job_lease_seconds=_int("JOB_LEASE_SECONDS", defaults.job_lease_seconds),
        max_request_body_bytes=_int("MAX_REQUEST_BODY_BYTES", defaults.max_request_body_bytes),
        telemedicine_flexibilities_until=_date("TELEMEDICINE_FLEXIBILITIES_UNTIL", defaults.telemedicine_flexibilities_until),
        thresholds=ClinicalThresholds.from_env(),
    )
    settings.validate()
    return settings


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return load_settings()
