"""Finding: ten wrong passwords locked anyone's account for 15 minutes (a stranger could lock the owner out),
and an unknown email could be told apart from a known one.

Now wrong passwords are throttled per address and per email (telehealth/accounts/throttle.py): the stranger's
address waits, the owner signing in from elsewhere does not, and an unknown email gets the very same answers
after the same work."""

from __future__ import annotations

from datetime import timedelta

from argon2 import PasswordHasher

from telehealth.accounts import security
from telehealth.accounts.roles import Role
from tests.helpers import PASSWORD, csrf_headers, drain_jobs, link_in, make_person, sign_in, worker_context
from tests.integration.dosing.helpers import another_device

OWNER = "pat@example.org"


async def _try(device, email: str, password: str):
    return await device.post("/api/v1/auth/sign-in", json={"email": email, "password": password}, headers=await csrf_headers(device))


async def test_a_strangers_wrong_passwords_do_not_keep_the_owner_out(client, session_factory, settings, clock):
    owner = await make_person(session_factory, role=Role.PATIENT, email=OWNER, now=clock.now(), settings=settings)
    stranger = another_device(client, ip="203.0.113.9", user_agent="a stranger's laptop")
    for attempt in range(10):
        assert (await _try(stranger, OWNER, f"guess number {attempt}")).status_code == 401
    # the stranger's address waits, even with the right password ...
    refused = await _try(stranger, OWNER, PASSWORD)
    assert refused.status_code == 429
    assert refused.json()["code"] == "auth.rate_limited"
    # ... while the owner, from their own address, signs in as usual (it used to be 403 auth.account_locked)
    await sign_in(client, owner, clock)
    assert (await client.get("/api/v1/auth/me")).json()["email"] == OWNER


async def test_guessing_from_many_addresses_pauses_only_unfamiliar_ones_and_a_reset_lifts_it(
    client, session_factory, settings, clock, smtp
):
    owner = await make_person(session_factory, role=Role.PATIENT, email=OWNER, now=clock.now(), settings=settings)
    await sign_in(client, owner, clock)  # the owner's address is now familiar
    clock.advance(timedelta(minutes=1))
    for machine in range(3):  # 30 wrong passwords in all, 10 from each address
        guesser = another_device(client, ip=f"203.0.113.{machine + 1}", user_agent="a botnet")
        for attempt in range(10):
            assert (await _try(guesser, OWNER, f"guess {machine}-{attempt}")).status_code == 401
    new_place = another_device(client, ip="198.51.100.77", user_agent="the owner's phone, abroad")
    paused = await _try(new_place, OWNER, PASSWORD)
    assert paused.status_code == 429
    assert "usually sign in" in paused.json()["detail"]
    # where the owner signed in before, they still get in
    await sign_in(client, owner, clock)
    # and they were told (once) why other places are paused
    await drain_jobs(worker_context(session_factory, settings, clock))
    assert [m["Subject"] for m in smtp.messages] == ["Sign-in paused on your Evergreen Home Program account"]

    # a password reset forgets the guesses (they were at the old password): signing in works from anywhere at once
    await new_place.post("/api/v1/auth/password-reset", json={"email": OWNER}, headers=await csrf_headers(new_place))
    await drain_jobs(worker_context(session_factory, settings, clock))
    token = link_in(smtp.text_of(smtp.messages[-1]), "/password/reset")
    new_password = "another long passphrase"
    reset = await new_place.post(
        "/api/v1/auth/password-reset/confirm", json={"token": token, "password": new_password}, headers=await csrf_headers(new_place)
    )
    assert reset.status_code == 200
    assert (await _try(new_place, OWNER, new_password)).status_code == 200


async def test_an_unknown_email_gets_exactly_the_answers_a_known_one_gets(client, session_factory, settings, clock, monkeypatch):
    await make_person(session_factory, role=Role.PATIENT, email=OWNER, now=clock.now(), settings=settings)
    checked: list[str] = []

    class CountingHasher(PasswordHasher):
        def verify(self, hash, password):
            checked.append(password)
            return super().verify(hash, password)

    monkeypatch.setattr(security, "_hasher", CountingHasher())
    known = another_device(client, ip="203.0.113.20", user_agent="prober")
    unknown = another_device(client, ip="203.0.113.21", user_agent="prober")
    for attempt in range(12):
        checked.clear()
        a = await _try(known, OWNER, f"wrong guess {attempt}")
        known_work = list(checked)
        checked.clear()
        b = await _try(unknown, "nobody@example.org", f"wrong guess {attempt}")
        assert (a.status_code, a.json()) == (b.status_code, b.json()), f"attempt {attempt + 1}"
        # the same work: a password hash is checked for the unknown email too (a dummy one), and neither once throttled
        assert known_work == checked == ([f"wrong guess {attempt}"] if attempt < 10 else [])
    assert a.status_code == 429
