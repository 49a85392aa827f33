"""One lock order for every safety decision on a patient, so no decision acts on a fact another is changing.

Unlock, check-in, report, scheduling, pause, resume, discontinue, a new crisis escalation, a serious event
and a reassessment answer each take, in this order and only in this order:

  1. the patient's row (FOR NO KEY UPDATE: it orders these decisions among themselves, and still lets rows
     that merely reference the patient be inserted, which take FOR KEY SHARE);
  2. the plan's row;
  3. the dosing session's row.

Taking the patient first is what makes an unlock that races a pause or a crisis lose: the second to arrive
waits, then (READ COMMITTED) reads the first one's committed result. Skipping a level is fine; going back up
is not (that is a deadlock waiting for its moment). Taking a lock already held is a no-op.
"""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import select

from telehealth.accounts.models import Patient


async def lock_patient(session: AsyncSession, patient_id: uuid.UUID) -> None:
    """Level 1 of the order above; every safety decision on the patient starts here."""
    await session.execute(select(Patient.id).where(Patient.id == patient_id).with_for_update(key_share=True))
