"""Consent documents: each a versioned template; a signature stores the version, the SHA-256 of the text
the patient saw, the typed name, the time, IP and user agent. Publishing a new version (a new file and a
new version here) makes the portal ask again."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cached_property

from telehealth.bundled import TEMPLATES_DIR

CONSENT_DIR = TEMPLATES_DIR / "consents"


@dataclass(frozen=True)
class ConsentDocument:
    key: str
    title: str
    version: str

    @property
    def template(self) -> str:
        return f"consents/{self.key}-{self.version}.html"

    @cached_property
    def text(self) -> str:
        return (CONSENT_DIR / f"{self.key}-{self.version}.html").read_text(encoding="utf-8")

    @cached_property
    def sha256(self) -> str:
        return hashlib.sha256(self.text.encode("utf-8")).hexdigest()


CONSENT_DOCUMENTS: dict[str, ConsentDocument] = {
    document.key: document
    for document in (
        ConsentDocument("telehealth_consent", "Consent to telehealth care", "2026-1"),
        ConsentDocument("controlled_substance_agreement", "Controlled-substance agreement", "2026-1"),
        ConsentDocument("home_safety_sitter_agreement", "Home safety and sitter agreement", "2026-1"),
        ConsentDocument("financial_policy", "Financial policy", "2026-1"),
    )
}
