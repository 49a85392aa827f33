"""A sitter's emails name the patient by first name only: subjects show on lock screens and pass through
mail servers (DOMAIN.md's privacy rules); the full name stays inside the portal."""

from __future__ import annotations

from datetime import timedelta

from tests.integration.dosing.helpers import SITTER, active_plan, confirmed_sitter, execute, patient_signed_in, scheduled


async def test_sitter_emails_carry_the_first_name_only(client, session_factory, settings, clock, mail):
    home = await active_plan(session_factory, settings, clock)
    await execute(session_factory, "UPDATE user_account SET full_name = 'Dana Freshwater' WHERE id = :u", u=home.patient.user_id)
    await patient_signed_in(client, home, clock)
    sitter = await confirmed_sitter(client, mail)
    await scheduled(client, sitter["id"], clock.now() + timedelta(days=1))
    await mail.deliver()
    sent = [m for m in mail.smtp.messages if m["To"] == SITTER["email"]]
    assert len(sent) >= 2, [m["Subject"] for m in sent]  # the invitation and the session's invite
    assert any("Dana" in str(m["Subject"]) for m in sent)
    for message in sent:
        assert "Freshwater" not in str(message["Subject"]) and "Freshwater" not in mail.smtp.text_of(message), message["Subject"]
