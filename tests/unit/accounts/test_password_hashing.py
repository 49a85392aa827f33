"""Production's password hashing parameters. The tests hash at the least cost (tests/conftest.py swaps the hasher
for this process); here is what telehealth/accounts/security.py builds for the service."""

from __future__ import annotations

from argon2 import Type, extract_parameters

from telehealth.accounts import security
from tests.conftest import PRODUCTION_DUMMY_HASH, PRODUCTION_HASHER, TEST_HASHER

# argon2-cffi's defaults: Argon2id, RFC 9106's second recommended (low-memory) profile
PRODUCTION = {"type": Type.ID, "time_cost": 3, "memory_cost": 65536, "parallelism": 4, "hash_len": 32, "salt_len": 16}


def test_production_hashes_with_argon2id_at_rfc_9106_low_memory_cost(monkeypatch):
    assert {name: getattr(PRODUCTION_HASHER, name) for name in PRODUCTION} == PRODUCTION
    monkeypatch.setattr(security, "_hasher", PRODUCTION_HASHER)
    digest = security.hash_password("a long enough password")
    assert digest.startswith("$argon2id$v=19$m=65536,t=3,p=4$")
    assert security.verify_password(digest, "a long enough password")
    assert not security.password_needs_rehash(digest)


def test_production_rehashes_a_password_hashed_at_a_lower_cost(monkeypatch):
    cheap = TEST_HASHER.hash("a long enough password")
    assert extract_parameters(cheap).memory_cost < PRODUCTION["memory_cost"]
    monkeypatch.setattr(security, "_hasher", PRODUCTION_HASHER)
    assert security.password_needs_rehash(cheap)


def test_an_unknown_email_costs_what_a_known_one_does_in_production():
    """Sign-in verifies this dummy when the email is unknown: a hash at production's cost, like every stored one."""
    parameters = extract_parameters(PRODUCTION_DUMMY_HASH)
    assert {name: getattr(parameters, name) for name in PRODUCTION} == PRODUCTION
