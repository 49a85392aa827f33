"""How busy the audit sealing lock is during a phase (requests no longer take it; the sealer does): sampled from pg_locks."""

from __future__ import annotations

import asyncio

import asyncpg

from telehealth.audit.service import AUDIT_SEAL_LOCK_KEY as AUDIT_CHAIN_LOCK_KEY

# A one-bigint advisory lock shows in pg_locks as classid = high 32 bits, objid = low 32 bits, objsubid = 1.
SAMPLE = f"""
SELECT count(*) FILTER (WHERE granted) AS held, count(*) FILTER (WHERE NOT granted) AS waiting
FROM pg_locks
WHERE locktype = 'advisory' AND classid = {AUDIT_CHAIN_LOCK_KEY >> 32} AND objid = {AUDIT_CHAIN_LOCK_KEY & 0xFFFFFFFF}
  AND objsubid = 1
"""


class AuditLockProbe:
    def __init__(self, dsn: str, *, every: float = 0.01) -> None:
        self.dsn = dsn
        self.every = every
        self.samples: list[tuple[int, int]] = []
        self._stop = asyncio.Event()

    async def _run(self) -> None:
        connection = await asyncpg.connect(self.dsn)
        try:
            while not self._stop.is_set():
                row = await connection.fetchrow(SAMPLE)
                self.samples.append((row["held"], row["waiting"]))
                await asyncio.sleep(self.every)
        finally:
            await connection.close()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> str:
        self._stop.set()
        await self._task
        if not self.samples:
            return "no samples"
        held = sum(1 for h, _ in self.samples if h) / len(self.samples)
        waiting = sum(w for _, w in self.samples) / len(self.samples)
        return f"held in {held:.0%} of {len(self.samples)} samples, {waiting:.1f} transactions waiting on average"
