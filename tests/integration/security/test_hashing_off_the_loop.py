"""Finding: Argon2 ran on the event loop, stalling every request of the process for the length of a hash
(~190 ms a sign-in). Hashing and verifying now run in a worker thread.

No timing here: the hasher is wrapped so that, while it runs, it waits for a coroutine on the loop to say
"the loop is alive". On the loop's own thread that coroutine could never run, and the wait would time out."""

from __future__ import annotations

import asyncio
import threading

from argon2 import PasswordHasher

from telehealth.accounts import security
from telehealth.accounts.roles import Role
from tests.conftest import TEST_HASHER
from tests.helpers import PASSWORD, make_person


class LoopWatchingHasher(PasswordHasher):
    """Each hash or verify first announces itself, then waits (up to 5 s) for the event loop to answer."""

    def __init__(self) -> None:
        # at the test process's cost (tests/conftest.py): the account was hashed at it, so signing in rehashes nothing
        super().__init__(time_cost=TEST_HASHER.time_cost, memory_cost=TEST_HASHER.memory_cost, parallelism=TEST_HASHER.parallelism)
        self.started, self.loop_answered = threading.Event(), threading.Event()
        self.calls: list[bool] = []  # per call: did the loop run while it hashed?

    def _watch(self) -> None:
        self.loop_answered.clear()
        self.started.set()
        self.calls.append(self.loop_answered.wait(timeout=5))
        self.started.clear()

    def hash(self, password, *, salt=None):
        self._watch()
        return super().hash(password, salt=salt)

    def verify(self, hash, password):
        self._watch()
        return super().verify(hash, password)


async def _answer_while_hashing(hasher: LoopWatchingHasher, stop: asyncio.Event) -> None:
    while not stop.is_set():
        if hasher.started.is_set():
            hasher.loop_answered.set()
        await asyncio.sleep(0.001)


async def test_sign_in_verifies_the_password_while_the_loop_keeps_running(session_factory, settings, clock, monkeypatch):
    """The sign-in service itself, on this test's loop (the test client would run the app on a loop of its own)."""
    from telehealth.accounts.service import SignInAttempt, check_password_sign_in
    from telehealth.db.engine import transaction

    patient = await make_person(session_factory, role=Role.PATIENT, email="pat@example.org", now=clock.now(), settings=settings)
    hasher = LoopWatchingHasher()
    monkeypatch.setattr(security, "_hasher", hasher)
    stop = asyncio.Event()
    watcher = asyncio.create_task(_answer_while_hashing(hasher, stop))
    try:
        async with transaction(session_factory) as session:
            attempt = SignInAttempt(patient.email, PASSWORD, "192.0.2.1", "a browser")
            user = await check_password_sign_in(session, attempt, now=clock.now(), settings=settings)
    finally:
        stop.set()
        await watcher
    assert user.id == patient.user_id
    assert hasher.calls == [True]


async def test_hashing_a_new_password_leaves_the_loop_free(monkeypatch):
    hasher = LoopWatchingHasher()
    monkeypatch.setattr(security, "_hasher", hasher)
    stop = asyncio.Event()
    watcher = asyncio.create_task(_answer_while_hashing(hasher, stop))
    try:
        digest = await security.hash_password_in_thread("a long enough password")
        assert await security.verify_password_in_thread(digest, "a long enough password")
    finally:
        stop.set()
        await watcher
    assert hasher.calls == [True, True]
