"""The intake: saved as it goes, resumable, the address-state rule, ranges, consents, submission."""

from __future__ import annotations

import shutil

from sqlalchemy import select

from telehealth.accounts.models import Patient
from telehealth.intake.models import ConsentSignature, QuestionnaireResponse
from telehealth.intake.sections import STEPS
from tests.helpers import csrf_headers, sign_in
from tests.integration.intake.helpers import CLEAN, complete_intake, new_patient, save, submit


async def test_a_clean_intake_is_eligible_and_stores_scores_with_versions(client, session_factory, settings, clock):
    patient = await new_patient(client, session_factory, settings, clock)
    await complete_intake(client)
    result = await submit(client)
    assert result.status_code == 200
    assert result.json() == {
        "outcome": "eligible",
        "headline": "You can go on to the next step",
        "explanations": [],
        "next_step": "Your next step is to book a video consultation with a prescriber.",
        "crisis": False,
    }
    async with session_factory() as session:
        responses = {r.questionnaire: r for r in (await session.execute(select(QuestionnaireResponse))).scalars()}
        signatures = (await session.execute(select(ConsentSignature))).scalars().all()
        record = await session.get(Patient, patient.patient_id)
    assert {(k, r.version, r.score, r.band) for k, r in responses.items()} == {
        ("phq9", "phq9-v1", 8, "mild"),
        ("gad7", "gad7-v1", 7, "mild"),
        ("cssrs", "cssrs-screener-v1", 0, None),
    }
    assert len(signatures) == 4 and all(len(s.content_sha256) == 64 and s.ip and s.typed_name == "robin EXAMPLE" for s in signatures)
    assert record.timezone == "America/Chicago"
    again = await submit(client)
    assert (again.status_code, again.json()["code"]) == (409, "intake.already_submitted")
    assert (await save(client, "vitals", CLEAN["vitals"])).status_code == 409


async def test_a_patient_can_stop_and_come_back(client, session_factory, settings, clock):
    patient = await new_patient(client, session_factory, settings, clock)
    for step in ("demographics", "address", "emergency_contact"):
        assert (await save(client, step, CLEAN[step])).status_code == 200
    client.cookies.clear()
    await sign_in(client, patient, clock)
    overview = (await client.get("/api/v1/intake")).json()
    assert [s["key"] for s in overview["steps"] if s["done"]] == ["demographics", "address", "emergency_contact"]
    assert overview["next_step"] == "medical_history"
    assert [s["key"] for s in overview["steps"]] == list(STEPS)
    page = await client.get("/intake/address")
    assert 'value="1 Main Street"' in page.text
    incomplete = await submit(client)
    assert incomplete.status_code == 422
    assert set(incomplete.json()["fields"]) == set(STEPS) - {"demographics", "address", "emergency_contact"}


async def test_the_shipping_address_must_be_in_the_waitlist_state(client, session_factory, settings, clock):
    await new_patient(client, session_factory, settings, clock, state="NY")
    response = await save(client, "address", CLEAN["address"] | {"state": "NJ"})
    assert response.status_code == 422
    assert response.json()["code"] == "intake.address_state_mismatch"
    assert response.json()["fields"] == {"state": "must be New York"}
    assert (await client.get("/api/v1/intake")).json()["steps"][1]["done"] is False


async def test_answers_outside_plausible_ranges_are_refused(client, session_factory, settings, clock):
    await new_patient(client, session_factory, settings, clock)
    high = await save(client, "vitals", CLEAN["vitals"] | {"bp_systolic": "251", "pulse": "29"})
    assert high.status_code == 422
    assert high.json()["fields"] == {"bp_systolic": "must be between 70 and 250", "pulse": "must be between 30 and 220"}
    inverted = await save(client, "vitals", CLEAN["vitals"] | {"bp_systolic": "90", "bp_diastolic": "95"})
    assert inverted.json()["fields"] == {"bp_diastolic": "must be lower than the systolic (top) number"}
    assert (await save(client, "vitals", CLEAN["vitals"] | {"bp_systolic": "250", "bp_diastolic": "150"})).status_code == 200
    partial = await save(client, "phq9", {"phq9_1": 1, "phq9_2": 7})
    assert partial.status_code == 422
    assert partial.json()["fields"]["phq9_2"] == "Please choose one of the answers shown."
    assert partial.json()["fields"]["phq9_9"] == "Please choose an answer."
    stray = await save(client, "pregnancy", CLEAN["pregnancy"] | {"smoker": "no"})
    assert stray.json()["fields"] == {"smoker": "is not a question on this step"}
    odd_types = await save(client, "medications", {"classes": 5, "other": ["x"]})
    assert odd_types.json()["fields"] == {"classes": "must be a list of choices", "other": "must be text"}
    nul = await save(client, "emergency_contact", CLEAN["emergency_contact"] | {"name": "Sam\u0000"})
    assert nul.json()["fields"] == {"name": "contains characters that are not allowed"}
    future = await save(client, "demographics", CLEAN["demographics"] | {"date_of_birth": "2099-01-01"})
    assert (future.status_code, future.json()["fields"]) == (422, {"date_of_birth": "is in the future"})


async def test_a_consent_needs_the_full_legal_name(client, session_factory, settings, clock):
    await new_patient(client, session_factory, settings, clock)
    await save(client, "demographics", CLEAN["demographics"])
    wrong = await client.post(
        "/api/v1/intake/consents", json={"document": "financial_policy", "typed_name": "R. Example"}, headers=await csrf_headers(client)
    )
    assert wrong.status_code == 422
    assert wrong.json()["detail"] == "To sign, type your full name exactly: Robin Example."
    right = await client.post(
        "/api/v1/intake/consents", json={"document": "financial_policy", "typed_name": "Robin Example"}, headers=await csrf_headers(client)
    )
    assert [c["document"] for c in right.json()["consents_to_sign"]] == [
        "telehealth_consent",
        "controlled_substance_agreement",
        "home_safety_sitter_agreement",
    ]


async def test_a_new_document_version_asks_again(client, session_factory, settings, clock, monkeypatch, tmp_path):
    from telehealth.intake import consents

    await new_patient(client, session_factory, settings, clock)
    await complete_intake(client)
    assert (await client.get("/api/v1/intake")).json()["consents_to_sign"] == []
    for path in consents.CONSENT_DIR.iterdir():
        shutil.copy(path, tmp_path / path.name)
    (tmp_path / "financial_policy-2027-1.html").write_text("<h3>Financial policy</h3><p>New fees.</p>")
    monkeypatch.setattr(consents, "CONSENT_DIR", tmp_path)
    monkeypatch.setitem(
        consents.CONSENT_DOCUMENTS, "financial_policy", consents.ConsentDocument("financial_policy", "Financial policy", "2027-1")
    )
    overview = (await client.get("/api/v1/intake")).json()
    assert [(c["document"], c["version"]) for c in overview["consents_to_sign"]] == [("financial_policy", "2027-1")]
    assert overview["next_step"] == "consents"
