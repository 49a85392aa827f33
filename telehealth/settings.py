"""Every setting comes from the environment; one cached `get_settings()` serves the whole process.

docs/operations.md lists each variable. Clinical thresholds are clinic settings (DOMAIN.md marks them
*default*), so they live here rather than as constants in the services that apply them.

Each field declares its variable, its bounds and any format check next to it (`setting(...)`,
telehealth/lib/env_settings.py); a value outside them stops the process, naming the variable. The safety
envelope's bounds are declared in `ClinicalThresholds.check_envelope`, which words its refusals as such.
"""

from __future__ import annotations

import itertools
import os
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from functools import lru_cache
from pathlib import Path
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from telehealth.lib.env_settings import SettingsError as SettingsError  # raised by every check; imported from here
from telehealth.lib.env_settings import check_declared, read_declared, setting
from telehealth.lib.key_texts import parse_keyring

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SECRET_KEY = "development-only-secret-key-change-me"
# Encrypts TOTP secrets outside production (accounts/totp_secrets.py); production refuses it, as it refuses SECRET_KEY's.
DEVELOPMENT_TOTP_KEY = "dev:8pFIqhQbLZgHkxTK48qt-LIn3d_mvj5V184I8yL6g4M"


# Hand readers, for a setting read outside the declarations (prefer declaring it with `setting(...)`).
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


def _blood_pressure(text: str) -> tuple[int, int]:
    parts = text.split("/")
    if len(parts) != 2 or not all(part.strip().isdecimal() for part in parts):
        raise ValueError("two whole numbers like 140/90")
    return int(parts[0]), int(parts[1])


def _one_of(*choices: str) -> Callable[[str], str | None]:
    def check(value: str) -> str | None:
        return None if value in choices else f"must be {', '.join(choices[:-1])} or {choices[-1]}, got {value!r}"

    return check


def _url(*schemes: str) -> Callable[[str], str | None]:
    def check(value: str) -> str | None:
        try:
            parts = urlsplit(value)
            parts.port  # noqa: B018 (raises on a port that is not a number from 0 to 65535)
        except ValueError:
            parts = None
        if parts is None or parts.scheme not in schemes or not (parts.hostname or parts.path):
            return f"must be a {' or '.join(f'{scheme}://' for scheme in schemes)} URL, got {value!r}"
        return None

    return check


def _time_zone(value: str) -> str | None:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        return f"{value!r} is not an IANA time zone"
    return None


def parse_strengths(text: str) -> tuple[int, ...]:
    """`50,100,150,200` -> (50, 100, 150, 200); anything else (a letter O for a zero, an empty item, a
    repeat, a strength above the envelope's dose cap) is refused, never skipped."""
    strengths = []
    for item in text.split(","):
        item = item.strip()
        if not item.isdecimal() or not 1 <= int(item) <= ENVELOPE_MAX_DOSE_MG:
            raise ValueError(f"{item!r} is not a whole number of mg from 1 to {ENVELOPE_MAX_DOSE_MG}")
        if int(item) in strengths:
            raise ValueError(f"{item} mg is listed twice")
        strengths.append(int(item))
    return tuple(strengths)


APPOINTMENT_TYPES = ("consult", "reassessment", "integration")
CPT_CODE = re.compile(r"\d{4}[0-9FTU]")  # five characters: Category I digits, II ends F, III ends T, PLA ends U


def parse_cpt_codes(text: str) -> dict[str, str]:
    """`consult=90792,reassessment=99214` -> {"consult": "90792", ...}; a malformed pair is refused."""
    codes: dict[str, str] = {}
    for item in text.split(","):
        kind, equals, code = (part.strip() for part in item.partition("="))
        if not equals:
            raise ValueError(f"{item.strip()!r} is not type=code (like consult=90792)")
        if kind not in APPOINTMENT_TYPES:
            raise ValueError(f"{kind!r} is not an appointment type ({', '.join(APPOINTMENT_TYPES)})")
        if not CPT_CODE.fullmatch(code):
            raise ValueError(f"{code!r} is not a CPT code (five characters, like 90792)")
        if kind in codes:
            raise ValueError(f"{kind} is listed twice")
        codes[kind] = code
    return codes


def _format(parse: Callable[[str], object], wanted: str) -> Callable[[str], str | None]:
    """A check that `parse` accepts the text; the reason names what it must be and what is wrong."""

    def check(value: str) -> str | None:
        try:
            parse(value)
        except ValueError as exc:
            return f"must be {wanted}: {exc} (got {value!r})"
        return None

    return check


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

    # Settings without bounds here have theirs in the safety envelope (check_envelope, below).
    intake_bp_ineligible: tuple[int, int] = setting((160, 100), "INTAKE_BP_INELIGIBLE", parse=_blood_pressure)
    bp_needs_review: tuple[int, int] = setting((140, 90), "BP_NEEDS_REVIEW", parse=_blood_pressure)
    bp_urgent: tuple[int, int] = setting((180, 120), "BP_URGENT", parse=_blood_pressure)
    review_age_over: int = setting(65, "REVIEW_AGE_OVER", ge=18, le=120)
    max_dose_mg_per_session: int = setting(400, "MAX_DOSE_MG_PER_SESSION")
    max_sessions_per_plan: int = setting(12, "MAX_SESSIONS_PER_PLAN")
    default_sessions_per_plan: int = setting(6, "DEFAULT_SESSIONS_PER_PLAN")
    min_hours_between_sessions: int = setting(48, "MIN_HOURS_BETWEEN_SESSIONS")
    pdmp_check_valid_hours: int = setting(24, "PDMP_CHECK_VALID_HOURS")
    checkin_valid_minutes: int = setting(60, "CHECKIN_VALID_MINUTES")
    invitation_valid_days: int = setting(7, "INVITATION_VALID_DAYS", ge=1)
    bp_recheck_after_minutes: int = setting(5, "BP_RECHECK_AFTER_MINUTES", ge=1)
    # a session can still be unlocked this long after its time
    unlock_late_minutes: int = setting(120, "UNLOCK_LATE_MINUTES", ge=1)
    presence_link_minutes_before: int = setting(60, "PRESENCE_LINK_MINUTES_BEFORE", ge=1)
    report_reminder_hours: int = setting(24, "REPORT_REMINDER_HOURS", ge=1)
    report_alert_hours: int = setting(48, "REPORT_ALERT_HOURS", ge=1)
    # after unlock: no end attestation or completion report earlier without a reason
    observation_minutes: int = setting(60, "OBSERVATION_MINUTES")

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
                    f"{name}={systolic}/{diastolic} is outside the safety envelope: "
                    f"it may be at most {top_systolic}/{top_diastolic} (and at least 60/40)"
                )
        for (lower_name, lower, _), (upper_name, upper, _) in itertools.pairwise(pressures):
            if not (lower[0] < upper[0] and lower[1] < upper[1]):
                raise SettingsError(
                    f"{lower_name}={lower[0]}/{lower[1]} must be below {upper_name}={upper[0]}/{upper[1]} "
                    "(needs review < ineligible at intake < urgent, in both numbers)"
                )

    @classmethod
    def from_env(cls) -> ClinicalThresholds:
        return cls(**read_declared(cls))


@dataclass(frozen=True)
class Settings:
    environment: str = setting("development", "APP_ENV", check=_one_of("development", "test", "production"))
    database_url: str | None = setting(None, "DATABASE_URL", check=_url("postgresql", "postgres", "postgresql+asyncpg"))
    embedded_data_dir: Path = setting(PROJECT_ROOT / ".data" / "postgres-18", "EMBEDDED_DATA_DIR")
    auto_migrate: bool = setting(True, "AUTO_MIGRATE")  # unset: off in production (load_settings)
    seed_demo: bool = setting(False, "SEED_DEMO")  # load_settings: true for the embedded database, else only with SEED_DEMO=true
    smtp_url: str | None = setting(None, "SMTP_URL", check=_url("smtp", "smtps"))
    mail_from: str = setting("Care team <care@clinic.example>", "MAIL_FROM")
    stripe_api_key: str = setting("sk_test_placeholder", "STRIPE_API_KEY")
    stripe_webhook_secret: str = setting("whsec_placeholder", "STRIPE_WEBHOOK_SECRET")
    stripe_api_base: str | None = setting(None, "STRIPE_API_BASE", check=_url("http", "https"))
    secret_key: str = setting(DEFAULT_SECRET_KEY, "SECRET_KEY")
    # unset: where this machine serves (HOST and PORT), see load_settings
    public_base_url: str = setting("http://127.0.0.1:8000", "PUBLIC_BASE_URL", check=_url("http", "https"))
    clinic_name: str = setting("Evergreen Home Program", "CLINIC_NAME")
    clinic_timezone: str = setting("America/New_York", "CLINIC_TIMEZONE", check=_time_zone)
    host: str = setting("127.0.0.1", "HOST")
    port: int = setting(8000, "PORT", ge=1, le=65535)
    run_worker_in_process: bool = setting(True, "RUN_WORKER_IN_PROCESS")
    session_idle_minutes: int = setting(30, "SESSION_IDLE_MINUTES", ge=1)
    session_absolute_hours: int = setting(12, "SESSION_ABSOLUTE_HOURS", ge=1)
    login_lock_after_failures: int = setting(10, "LOGIN_LOCK_AFTER_FAILURES", ge=1)
    login_lock_minutes: int = setting(15, "LOGIN_LOCK_MINUTES", ge=1)
    login_attempts_per_ip_per_15_min: int = setting(50, "LOGIN_ATTEMPTS_PER_IP_PER_15_MIN", ge=1)
    waitlist_joins_per_ip_per_hour: int = setting(20, "WAITLIST_JOINS_PER_IP_PER_HOUR", ge=1)
    late_cancel_fee_cents: int = setting(5000, "LATE_CANCEL_FEE_CENTS", ge=0)
    # Fees (integer cents): the first values of the clinic's billing policy, which coordinators then change.
    consult_fee_cents: int = setting(15000, "CONSULT_FEE_CENTS", ge=0)
    program_fee_cents: int = setting(115800, "PROGRAM_FEE_CENTS", ge=0)
    integration_fee_cents: int = setting(7500, "INTEGRATION_FEE_CENTS", ge=0)
    no_show_fee_cents: int = setting(7500, "NO_SHOW_FEE_CENTS", ge=0)
    # The clinic's formulary for troche plans (mg per unit).
    troche_strengths_mg: str = setting(
        "50,100,150,200", "TROCHE_STRENGTHS_MG", check=_format(parse_strengths, "strengths in mg separated by commas, like 50,100,150")
    )
    stripe_timeout_seconds: float = setting(10.0, "STRIPE_TIMEOUT_SECONDS", gt=0, le=300)
    stripe_max_network_retries: int = setting(2, "STRIPE_MAX_NETWORK_RETRIES", ge=0, le=10)
    # Superbill: CPT code per appointment type, and the clinic's details printed on it.
    cpt_codes: str = setting(
        "consult=90792,reassessment=99214,integration=90837",
        "CPT_CODES",
        check=_format(parse_cpt_codes, "type=code pairs separated by commas, like consult=90792,integration=90837"),
    )
    clinic_address: str = setting("100 Main Street, Suite 200, Burlington, VT 05401", "CLINIC_ADDRESS")
    clinic_phone: str = setting("+1 802 555 0100", "CLINIC_PHONE")
    clinic_tax_id: str = setting("00-0000000", "CLINIC_TAX_ID")
    video_room_url_template: str = setting("{public_base_url}/rooms/{room_token}", "VIDEO_ROOM_URL_TEMPLATE")
    # The built-in room's ICE servers: STUN/TURN URLs, comma-separated. TURN credentials are made per visit
    # from VIDEO_TURN_SECRET (coturn's use-auth-secret), so no long-lived password reaches a browser.
    video_ice_urls: str = setting("", "VIDEO_ICE_URLS")
    video_turn_secret: str | None = setting(None, "VIDEO_TURN_SECRET")
    password_reset_valid_minutes: int = setting(30, "PASSWORD_RESET_VALID_MINUTES", ge=1)
    email_verification_valid_hours: int = setting(48, "EMAIL_VERIFICATION_VALID_HOURS", ge=1)
    step_up_valid_minutes: int = setting(5, "STEP_UP_VALID_MINUTES", ge=1)
    job_max_attempts: int = setting(8, "JOB_MAX_ATTEMPTS", ge=1)
    job_lease_seconds: int = setting(120, "JOB_LEASE_SECONDS", ge=1)
    max_request_body_bytes: int = setting(1_000_000, "MAX_REQUEST_BODY_BYTES", ge=1024)
    # The last day an audio-video visit alone is a basis for prescribing (the DEA's telemedicine flexibilities).
    telemedicine_flexibilities_until: date = setting(date(2026, 12, 31), "TELEMEDICINE_FLEXIBILITIES_UNTIL")
    # /metrics answers this bearer token; without one, only loopback clients
    metrics_token: str | None = setting(None, "METRICS_TOKEN")
    # A coordinator's short call with each new sitter before their first session (DOMAIN.md: default on).
    sitter_verification_required: bool = setting(True, "SITTER_VERIFICATION_REQUIRED")
    thresholds: ClinicalThresholds = field(default_factory=ClinicalThresholds)
    worker_concurrency: int = setting(4, "WORKER_CONCURRENCY", ge=1, le=64)  # jobs one worker runs at once
    # How DATABASE_URL pools: `session` (PostgreSQL itself, or PgBouncer in session mode) or `transaction` (PgBouncer
    # in transaction mode: no statement outlives its transaction, so no prepared statement is kept between them).
    database_pool_mode: str = setting("session", "DATABASE_POOL_MODE", check=_one_of("session", "transaction"))
    database_pool_size: int = setting(15, "DATABASE_POOL_SIZE", ge=1, le=1000)  # connections each app process keeps open
    # LISTEN/NOTIFY (the video room's signalling) and migrations need a session of their own: PostgreSQL itself.
    database_direct_url: str | None = setting(None, "DATABASE_DIRECT_URL", check=_url("postgresql", "postgres", "postgresql+asyncpg"))
    # Migrations run as the tables' owner; DATABASE_URL may then be a runtime role without DDL (operations.md).
    migration_database_url: str | None = setting(None, "MIGRATION_DATABASE_URL", check=_url("postgresql", "postgres", "postgresql+asyncpg"))
    # The audit chain's HMAC key, which the database never holds; old keys still verify what they sealed.
    audit_hmac_key: str | None = setting(None, "AUDIT_HMAC_KEY")
    audit_hmac_old_keys: str = setting("", "AUDIT_HMAC_OLD_KEYS")
    audit_anchor_path: Path | None = setting(None, "AUDIT_ANCHOR_PATH")  # append-only JSON lines: the chain's head, outside the database
    # TOTP secrets at rest: "id:base64url(32 bytes)" encrypts; old "id:key" entries, comma-separated, only decrypt.
    totp_encryption_key: str = setting(DEVELOPMENT_TOTP_KEY, "TOTP_ENCRYPTION_KEY")
    totp_old_encryption_keys: str = setting("", "TOTP_OLD_ENCRYPTION_KEYS")
    # The demo's movable clock (/dev/clock): on by itself for the embedded database; with a DATABASE_URL only when
    # DEMO_CLOCK=true; never in production (demo_clock_enabled).
    demo_clock: bool = setting(False, "DEMO_CLOCK")
    # Whether a page render first checks its template files for edits: unset, outside production only. Benchmarks
    # set it false to measure pages as production serves them (benchmarks/server.py).
    template_auto_reload: bool | None = setting(None, "TEMPLATE_AUTO_RELOAD")

    @property
    def is_production(self) -> bool:
        return self.environment == "production"

    @property
    def reloads_templates(self) -> bool:
        return not self.is_production if self.template_auto_reload is None else self.template_auto_reload

    @property
    def demo_clock_enabled(self) -> bool:
        """The demo clock may be moved: never in production; for the embedded database, or when DEMO_CLOCK=true."""
        return not self.is_production and (self.database_url is None or self.demo_clock)

    @property
    def uses_tls(self) -> bool:
        return self.public_base_url.startswith("https://")

    @property
    def troche_strengths(self) -> tuple[int, ...]:
        return parse_strengths(self.troche_strengths_mg)

    @property
    def cpt_code_by_type(self) -> dict[str, str]:
        return parse_cpt_codes(self.cpt_codes)

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

    @property
    def transaction_pooling(self) -> bool:
        return self.database_pool_mode == "transaction"

    @property
    def direct_database_url(self) -> str | None:
        """Where sessions of their own go (LISTEN, migrations): DATABASE_DIRECT_URL, else DATABASE_URL."""
        return self.database_direct_url or self.database_url

    def validate(self) -> None:
        """Refuse settings that would be unsafe or cannot work; called at start."""
        check_declared(self)  # each value against its declaration, however the settings were made
        check_declared(self.thresholds)
        if self.database_direct_url and not self.database_url:
            raise SettingsError("DATABASE_DIRECT_URL needs DATABASE_URL (the embedded database has no pooler in front)")
        if self.transaction_pooling and not self.database_direct_url:
            raise SettingsError(
                "DATABASE_POOL_MODE=transaction needs DATABASE_DIRECT_URL (LISTEN/NOTIFY and migrations need PostgreSQL itself)"
            )
        self.thresholds.check_envelope()  # development and production alike
        for url in self.video_ice_url_list:
            if not url.startswith(("stun:", "stuns:", "turn:", "turns:")):
                raise SettingsError(f"VIDEO_ICE_URLS: {url!r} is not a stun:, stuns:, turn: or turns: URL")
            if url.startswith("turn") and not self.video_turn_secret:
                raise SettingsError("VIDEO_TURN_SECRET is required when VIDEO_ICE_URLS names a TURN server")
        # a malformed key stops the start, naming the variable (accounts/totp_secrets.py builds its keyring the same way)
        parse_keyring(
            self.totp_encryption_key,
            self.totp_old_encryption_keys,
            current_variable="TOTP_ENCRYPTION_KEY",
            old_variable="TOTP_OLD_ENCRYPTION_KEYS",
        )
        if self.is_production:
            if self.demo_clock:
                raise SettingsError("DEMO_CLOCK is for demonstrations; production keeps real time (unset it)")
            if self.secret_key == DEFAULT_SECRET_KEY or len(self.secret_key) < 32:
                raise SettingsError("SECRET_KEY must be set to a random value of 32+ characters in production")
            if not self.database_url:
                raise SettingsError("DATABASE_URL is required in production (the embedded database is for demos)")
            if not self.smtp_url:
                raise SettingsError("SMTP_URL is required in production (the database mailbox is for development)")
            if self.stripe_api_key == "sk_test_placeholder" or self.stripe_webhook_secret == "whsec_placeholder":
                raise SettingsError("STRIPE_API_KEY and STRIPE_WEBHOOK_SECRET are required in production")
            if not self.audit_hmac_key or len(self.audit_hmac_key) < 32:
                raise SettingsError("AUDIT_HMAC_KEY must be set to a random value of 32+ characters in production")
            if self.audit_anchor_path is None:
                raise SettingsError("AUDIT_ANCHOR_PATH is required in production (the audit chain's anchors outside the database)")
            if self.totp_encryption_key == DEVELOPMENT_TOTP_KEY:
                raise SettingsError("TOTP_ENCRYPTION_KEY must be set in production (`python app.py new-totp-key` makes one)")
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
    declared = read_declared(Settings)
    environment = declared.get("environment", defaults.environment)
    # Production migrates as a release step (`db upgrade`), never as each instance starts.
    declared.setdefault("auto_migrate", environment != "production")
    host, port = declared.get("host", defaults.host), declared.get("port", defaults.port)
    declared["public_base_url"] = declared.get("public_base_url", served_base_url(host, port)).rstrip("/")
    # Demo accounts with known passwords go into the embedded database only, unless SEED_DEMO=true says so.
    embedded = declared.get("database_url") is None
    declared.setdefault("seed_demo", embedded)
    # The embedded demo signs with a random key of its own, kept beside its data; anything else uses SECRET_KEY
    # (production refuses the built-in default).
    if embedded and environment != "production" and "secret_key" not in declared:
        declared["secret_key"] = demo_secret_key(Path(declared.get("embedded_data_dir", defaults.embedded_data_dir)).parent)
    settings = Settings(
        **declared,
        thresholds=ClinicalThresholds.from_env(),
    )
    settings.validate()
    return settings


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return load_settings()
