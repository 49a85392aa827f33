"""Each entry point of the lock order (accounts/locks.py) holds the patient's row before it returns: checked
directly, with a second real connection that cannot take the patient's row (NOWAIT) while the first holds
what the entry point locked. Races show the effect; this shows the order, which is what keeps sitter steps
and pauses (that both touch the dosing session) from deadlocking."""

from __future__ import annotations

import uuid
from datetime import timedelta
from types import SimpleNamespace

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from telehealth.dosing.sessions import locked_session, own_session
from telehealth.prescribing.plans import own_plan
from tests.integration.dosing.helpers import active_plan, confirmed_sitter, patient_signed_in, scheduled

TRY_THE_PATIENT = "SELECT id FROM patient WHERE id = :p FOR NO KEY UPDATE NOWAIT"


@pytest.mark.parametrize("entry", ["own_session", "locked_session", "own_plan"])
async def test_each_entry_point_holds_the_patient_first(client, session_factory, settings, clock, mail, entry):
    home = await active_plan(session_factory, settings, clock)
    await patient_signed_in(client, home, clock)
    sitter = await confirmed_sitter(client, mail)
    booked = await scheduled(client, sitter["id"], clock.now() + timedelta(minutes=30))
    patient_id, session_id = home.patient.patient_id, uuid.UUID(booked["id"])
    async with session_factory() as first, session_factory() as second, first.begin():
        if entry == "own_session":
            await own_session(first, patient=SimpleNamespace(id=patient_id), dosing_session_id=session_id, lock=True)
        elif entry == "locked_session":
            await locked_session(first, session_id)
        else:
            await own_plan(first, plan_id=home.plan_id, signed_in=SimpleNamespace(user_id=home.prescriber.user_id), lock=True)
        with pytest.raises(DBAPIError, match="could not obtain lock"):
            async with second.begin():
                await second.execute(text(TRY_THE_PATIENT), {"p": patient_id})
