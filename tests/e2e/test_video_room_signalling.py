"""The video room's signalling socket (/rooms/{token}/signal) against the real app under uvicorn, spoken to by a
plain WebSocket client (no browser): who is let in and with which close code, what is relayed between the
patient and the clinician (through PostgreSQL NOTIFY, deflated when large), what the room records, and how a
frame outside the protocol ends the socket without its words reaching the other person or any log."""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import asyncpg
import httpx
import pytest
from sqlalchemy import select
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from telehealth.accounts.sessions import SESSION_COOKIE
from telehealth.db.channels import driver_dsn
from telehealth.lib.clock import SystemClock
from telehealth.scheduling.models import Appointment, VideoVisit, VisitConnection
from telehealth.scheduling.room_protocol import MAX_FRAME_CHARS, NOTIFY_PAYLOAD_LIMIT, Envelope, room_channel
from tests.e2e.conftest import LiveServer
from tests.integration.billing.helpers import insert_appointment
from tests.integration.scheduling.helpers import prescriber_with_hours, screened_patient
from tests.integration.system.test_several_processes import signed_in

# The `live_server` fixture needs no Chromium: these tests are not marked `browser`.

TIMEOUT = 5.0  # seconds for any one message or close
QUIET = 0.5  # seconds of silence that show nothing more is coming
CLIENT_LOGGER = "tests.e2e.signalling_client"  # this test's own client logs the frames it sends: not the app's logs
WORDS = "I feel unsafe tonight"
OFFER = {"type": "offer", "sdp": "v=0\r\no=- 4611731400430051336 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0 1\r\n"}
ANSWER = {"type": "answer", "sdp": "v=0\r\no=- 7310543257338052187 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0 1\r\n"}
CANDIDATE = {
    "candidate": "candidate:842163049 1 udp 1677729535 203.0.113.7 46154 typ srflx raddr 0.0.0.0 rport 0 generation 0",
    "sdpMid": "0",
    "sdpMLineIndex": 0,
}


@dataclass
class Room:
    server: LiveServer
    appointment_id: Any
    token: str
    tomorrow_token: str
    yesterday_token: str
    patient: httpx.AsyncClient
    clinician: httpx.AsyncClient
    stranger: httpx.AsyncClient
    clinician_without_code: httpx.AsyncClient

    @property
    def origin(self) -> str:
        return self.server.url

    def uri(self, token: str | None = None) -> str:
        return f"{self.server.url.replace('http://', 'ws://', 1)}/rooms/{token or self.token}/signal"


async def _token(session_factory, appointment_id) -> str:
    async with session_factory() as session:
        return await session.scalar(select(Appointment.room_token).where(Appointment.id == appointment_id))


@pytest.fixture
async def room(live_server: LiveServer, session_factory, settings) -> AsyncIterator[Room]:
    """A consult starting in about three minutes (its room is open), one the next day and one the day before, and
    everyone signed in."""
    clock = SystemClock()  # the live server runs on real time
    prescriber = await prescriber_with_hours(session_factory, settings, clock)
    patient = await screened_patient(session_factory, settings, clock)
    stranger = await screened_patient(session_factory, settings, clock, email="stranger@example.org")
    starts_at = (clock.now() + timedelta(minutes=3)).replace(second=0, microsecond=0)
    appointment_id = await insert_appointment(
        session_factory, patient=patient, clinician=prescriber, starts_at=starts_at, appointment_type="consult", minutes=45
    )
    tomorrow_id = await insert_appointment(
        session_factory,
        patient=patient,
        clinician=prescriber,
        starts_at=starts_at + timedelta(days=1),
        appointment_type="consult",
        minutes=45,
    )
    yesterday_id = await insert_appointment(
        session_factory,
        patient=patient,
        clinician=prescriber,
        starts_at=starts_at - timedelta(days=1),
        appointment_type="consult",
        minutes=45,
    )
    clients = [
        await signed_in(live_server.url, patient.email),
        await signed_in(live_server.url, prescriber.email, totp_secret=prescriber.totp_secret),
        await signed_in(live_server.url, stranger.email),
        await signed_in(live_server.url, prescriber.email),  # a password alone: the second factor is still owed
    ]
    try:
        tokens = [await _token(session_factory, appointment) for appointment in (appointment_id, tomorrow_id, yesterday_id)]
        yield Room(live_server, appointment_id, *tokens, *clients)
    finally:
        for client in clients:
            await client.aclose()


def cookie_header(client: httpx.AsyncClient) -> dict[str, str]:
    assert client.cookies.get(SESSION_COOKIE), "signed in, with a session cookie"
    return {"Cookie": "; ".join(f"{cookie.name}={cookie.value}" for cookie in client.cookies.jar)}


@asynccontextmanager
async def socket(
    room: Room, client: httpx.AsyncClient | None, *, token: str | None = None, origin: str | None = "same"
) -> AsyncIterator[ClientConnection]:
    """A WebSocket to the room as `client`'s person (None: no cookie), from our own origin unless told."""
    async with connect(
        room.uri(token),
        origin=room.origin if origin == "same" else origin,
        additional_headers=cookie_header(client) if client else None,
        proxy=None,
        open_timeout=TIMEOUT,
        close_timeout=TIMEOUT,
        logger=logging.getLogger(CLIENT_LOGGER),
    ) as ws:
        yield ws


async def receive(ws: ClientConnection, kind: str, *, passing: frozenset[str] = frozenset({"visit-started"})) -> dict[str, Any]:
    """The next message of type `kind`, passing over only those of the `passing` types."""
    while True:
        message = json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT))
        if message["type"] == kind:
            return message
        assert message["type"] in passing, f"waiting for {kind!r}, got {message}"


async def closed(ws: ClientConnection) -> tuple[list[dict[str, Any]], int | None]:
    """Every message still to come, and the close code the server ended the socket with."""
    messages = []
    try:
        while True:
            messages.append(json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT)))
    except ConnectionClosed:
        return messages, ws.close_code
    except TimeoutError:
        pytest.fail(f"the socket was expected to close but stayed open for {TIMEOUT:.0f} s after {messages}")


async def still_open(ws: ClientConnection) -> list[dict[str, Any]]:
    """What arrives in the next QUIET seconds; fails if the socket closes meanwhile."""
    messages = []
    try:
        while True:
            messages.append(json.loads(await asyncio.wait_for(ws.recv(), QUIET)))
    except TimeoutError:
        return messages
    except ConnectionClosed:
        pytest.fail(f"the socket closed ({ws.close_code}) after {messages}")


async def welcomed(ws: ClientConnection, participant: str) -> dict[str, Any]:
    welcome = await receive(ws, "welcome", passing=frozenset())
    assert welcome["participant"] == participant and welcome["closes_at"] and welcome["ice_servers"] == []
    return welcome


async def eventually(predicate, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + TIMEOUT
    while not await predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


def repetitive_sdp(chars: int) -> str:
    lines = ["v=0", "o=- 4611731400430051336 2 IN IP4 127.0.0.1", "s=-", "t=0 0", "a=group:BUNDLE 0 1"]
    payload = 96
    while sum(len(line) + 2 for line in lines) < chars:
        lines += [
            f"a=rtpmap:{payload} VP8/90000",
            f"a=rtcp-fb:{payload} nack pli",
            f"a=rtcp-fb:{payload} goog-remb",
            f"a=fmtp:{payload} max-fs=12288;max-fr=60",
        ]
        payload = payload + 1 if payload < 127 else 96
    return "\r\n".join(lines) + "\r\n"


@asynccontextmanager
async def notify_payloads(database_url: str, channel: str) -> AsyncIterator[list[str]]:
    """Every NOTIFY payload on `channel` meanwhile, as another process of the app would receive it."""
    payloads: list[str] = []
    connection = await asyncpg.connect(driver_dsn(database_url))
    await connection.add_listener(channel, lambda _conn, _pid, _channel, payload: payloads.append(payload))
    try:
        yield payloads
    finally:
        await connection.close()


async def test_patient_and_clinician_meet_and_their_signals_are_relayed(room: Room, session_factory, database_url):
    big_offer = {"type": "offer", "sdp": repetitive_sdp(20_000)}
    async with notify_payloads(database_url, room_channel(room.appointment_id.hex)) as payloads, socket(room, room.patient) as patient:
        welcome = await welcomed(patient, "patient")
        async with session_factory() as session:
            appointment = await session.get(Appointment, room.appointment_id)
        assert welcome["closes_at"] == (appointment.ends_at + timedelta(minutes=30)).isoformat()
        assert await still_open(patient) == []  # alone in the room, until the clinician arrives
        async with socket(room, room.clinician) as clinician:
            await welcomed(clinician, "clinician")
            assert await receive(patient, "peer-joined", passing=frozenset()) == {"type": "peer-joined"}
            assert await receive(patient, "visit-started", passing=frozenset()) == {"type": "visit-started"}
            assert await receive(clinician, "peer-joined", passing=frozenset()) == {"type": "peer-joined"}

            # Offer, candidates and answer each way, exactly as sent (a candidate's missing fields as null).
            await clinician.send(json.dumps({"type": "signal", "description": OFFER}))
            assert await receive(patient, "signal") == {"type": "signal", "description": OFFER}
            await clinician.send(json.dumps({"type": "signal", "candidate": CANDIDATE}))
            assert await receive(patient, "signal") == {"type": "signal", "candidate": {**CANDIDATE, "usernameFragment": None}}
            await patient.send(json.dumps({"type": "signal", "description": ANSWER}))
            assert await receive(clinician, "signal") == {"type": "signal", "description": ANSWER}
            end_of_candidates = {"candidate": "", "sdpMid": "0", "sdpMLineIndex": 0, "usernameFragment": "f00d"}
            await patient.send(json.dumps({"type": "signal", "candidate": end_of_candidates}))
            assert await receive(clinician, "signal") == {"type": "signal", "candidate": end_of_candidates}

            # A 20 kB offer does not fit a NOTIFY as JSON: it crosses deflated, and arrives intact.
            await clinician.send(json.dumps({"type": "signal", "description": big_offer}))
            assert await receive(patient, "signal") == {"type": "signal", "description": big_offer}
            assert await still_open(clinician) == []  # nobody hears their own signals

            async with session_factory() as session:
                visit = await session.get(VideoVisit, room.appointment_id)
                connections = list(
                    (await session.scalars(select(VisitConnection).where(VisitConnection.appointment_id == room.appointment_id))).all()
                )
            assert (
                visit is not None
                and visit.start_evidence == "both_connected"
                and visit.modality == "audio_video"
                and visit.ended_at is None
            )
            assert sorted(c.participant for c in connections) == ["clinician", "patient"] and all(c.left_at is None for c in connections)
            assert visit.started_at >= max(c.joined_at for c in connections)

            # The patient leaves (a "leave" frame), the clinician is told, then closes their own socket.
            await patient.send(json.dumps({"type": "leave"}))
            assert await closed(patient) == ([], 1000)
            assert await receive(clinician, "peer-left", passing=frozenset()) == {"type": "peer-left"}
            await clinician.close()  # and the clinician closes their socket

    big = [p for p in payloads if p.startswith("z")]
    assert len(big) == 1 and all(len(p.encode()) < NOTIFY_PAYLOAD_LIMIT for p in payloads)
    assert Envelope.decode(big[0]) == Envelope("clinician", Envelope.decode(big[0]).connection, "signal", {"description": big_offer})
    assert [Envelope.decode(p).kind for p in payloads].count("hello") == 2

    async def both_left() -> bool:
        async with session_factory() as session:
            lefts = list(
                (await session.scalars(select(VisitConnection.left_at).where(VisitConnection.appointment_id == room.appointment_id))).all()
            )
            ended = await session.scalar(select(VideoVisit.ended_at).where(VideoVisit.appointment_id == room.appointment_id))
        return len(lefts) == 2 and all(lefts) and ended is not None

    await eventually(both_left, "both connections' left_at and the visit's ended_at")
    async with session_factory() as session:
        visit = await session.get(VideoVisit, room.appointment_id)
        connections = list(
            (await session.scalars(select(VisitConnection).where(VisitConnection.appointment_id == room.appointment_id))).all()
        )
    assert len(connections) == 2 and visit.ended_at == max(c.left_at for c in connections) and visit.ended_at > visit.started_at


async def refusal(room: Room, client: httpx.AsyncClient | None, **options: Any) -> tuple[str | None, int | None]:
    """What a refused socket is told ("refused" message's code) and its close code."""
    async with socket(room, client, **options) as ws:
        messages, code = await closed(ws)
    assert len(messages) <= 1 and all(m["type"] == "refused" and m["message"] for m in messages), messages
    return (messages[0]["code"] if messages else None), code


async def test_who_is_refused_and_with_which_close_code(room: Room, session_factory):
    assert await refusal(room, None) == ("auth.required", 4401)  # no session cookie
    assert await refusal(room, room.clinician_without_code) == ("auth.required", 4401)  # a prescriber owes the second factor
    assert await refusal(room, room.patient, origin="http://evil.example") == ("room.cross_origin", 4403)
    assert await refusal(room, room.patient, origin=None) == ("room.cross_origin", 4403)  # no Origin at all
    assert await refusal(room, room.stranger) == ("appointment.not_found", 4404)  # signed in, not this appointment's
    assert await refusal(room, room.patient, token=room.tomorrow_token) == ("appointment.join_not_open", 4403)
    assert await refusal(room, room.clinician, token=room.tomorrow_token) == ("appointment.join_not_open", 4403)
    assert await refusal(room, room.patient, token=room.yesterday_token) == ("appointment.join_closed", 4410)
    assert await refusal(room, room.patient, token="no-such-room-token") == ("room.not_found", 4404)

    # None of them got in: no connection was recorded, no visit started.
    async with session_factory() as session:
        assert (await session.scalars(select(VisitConnection))).all() == []
        assert (await session.scalars(select(VideoVisit))).all() == []

    # The room's own patient, from the clinic's own page, is let in.
    async with socket(room, room.patient) as patient:
        await welcomed(patient, "patient")


@contextmanager
def every_log_record(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """Every logger at DEBUG and every record captured, also from loggers that do not propagate (uvicorn's)."""
    caplog.set_level(logging.DEBUG)
    loggers = [logger for logger in logging.root.manager.loggerDict.values() if isinstance(logger, logging.Logger)]
    saved = [(logger, logger.level, logger.disabled) for logger in loggers]
    stopping = [logger for logger in loggers if not logger.propagate]
    for logger in loggers:
        logger.setLevel(logging.DEBUG)
        logger.disabled = False
    for logger in stopping:
        logger.addHandler(caplog.handler)
    try:
        yield
    finally:
        for logger in stopping:
            logger.removeHandler(caplog.handler)
        for logger, level, disabled in saved:
            logger.setLevel(level)
            logger.disabled = disabled


def server_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    """The app's records (and its libraries'), without this test's own client's."""
    return [record for record in caplog.records if not record.name.startswith(CLIENT_LOGGER)]


def rendered(record: logging.LogRecord) -> str:
    text = record.getMessage()
    if record.exc_info:
        text += logging.Formatter().formatException(record.exc_info)
    return text + repr(getattr(record, "__dict__", {}))


async def test_a_frame_outside_the_protocol_closes_the_socket_and_the_person_can_rejoin(room: Room, caplog):
    noise = random.Random(7)
    incompressible = "v=0\r\n" + "".join(
        noise.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789") for _ in range(30_000)
    )
    bad_frames: list[tuple[str | bytes, int]] = [
        ("this is not JSON", 4400),
        (json.dumps({"type": "chat", "text": WORDS}), 4400),
        (json.dumps({"type": "signal", "description": OFFER, "text": WORDS}), 4400),
        (b"\x00\x01 binary", 1003),
        (json.dumps({"type": "signal", "description": {"type": "offer", "sdp": "v=0\r\n" + "a" * MAX_FRAME_CHARS}}), 1009),
        # Under 64,000 characters, but no NOTIFY can carry it even deflated.
        (json.dumps({"type": "signal", "description": {"type": "offer", "sdp": incompressible}}), 1009),
    ]
    with every_log_record(caplog):
        async with socket(room, room.clinician) as clinician:
            await welcomed(clinician, "clinician")
            heard: list[dict[str, Any]] = []
            for frame, code in bad_frames:
                async with socket(room, room.patient) as patient:
                    await welcomed(patient, "patient")
                    await receive(patient, "peer-joined")
                    await patient.send(frame)
                    assert (await closed(patient))[1] == code, frame[:40]
                heard += await still_open(clinician)
            # The same person is welcomed again after each, and nothing they sent reached the clinician.
            async with socket(room, room.patient) as patient:
                await welcomed(patient, "patient")
                await patient.send(json.dumps({"type": "signal", "description": OFFER}))
                assert await receive(clinician, "signal", passing=frozenset({"peer-joined", "peer-left"})) == {
                    "type": "signal",
                    "description": OFFER,
                }
    assert {m["type"] for m in heard} <= {"peer-joined", "peer-left", "visit-started"}, heard
    assert not any(WORDS in json.dumps(m) or "binary" in json.dumps(m) for m in heard)

    records = server_records(caplog)
    reasons = [record.getMessage() for record in records if record.name == "telehealth.video_room"]
    assert reasons == [
        "video room closed a connection: not_json",
        "video room closed a connection: unknown_type",
        "video room closed a connection: signal_fields",
        "video room closed a connection: not_text",
        "video room closed a connection: frame_too_large",
        "video room closed a connection: frame_too_large",
    ]
    # Not in any record of the app, its framework, database driver or server (uvicorn's frame trace included).
    leaking = [f"{record.name}: {record.getMessage()[:200]}" for record in records if WORDS in rendered(record)]
    assert leaking == [], leaking
    assert any(record.name.startswith("sqlalchemy") and record.levelno == logging.DEBUG for record in records)  # DEBUG was on


async def test_no_record_keeps_a_frames_words_even_with_uvicorn_at_debug(room: Room, caplog):
    with every_log_record(caplog):
        async with socket(room, room.patient) as patient:
            await welcomed(patient, "patient")
            await patient.send(json.dumps({"type": "chat", "text": WORDS}))
            assert (await closed(patient))[1] == 4400
    leaking = [f"{record.name}: {record.getMessage()[:200]}" for record in server_records(caplog) if WORDS in rendered(record)]
    assert leaking == [], leaking


async def test_the_same_person_joining_again_replaces_their_first_socket(room: Room):
    async with socket(room, room.patient) as first:
        await welcomed(first, "patient")
        async with socket(room, room.patient) as second:
            await welcomed(second, "patient")
            messages, code = await closed(first)
            assert code == 4409 and messages == []
            assert await still_open(second) == []

            # The second is the patient's socket now: the clinician meets them there, and signals reach it.
            async with socket(room, room.clinician) as clinician:
                await welcomed(clinician, "clinician")
                await receive(second, "peer-joined")
                await receive(clinician, "peer-joined")
                await clinician.send(json.dumps({"type": "signal", "description": OFFER}))
                assert await receive(second, "signal") == {"type": "signal", "description": OFFER}


async def test_the_other_person_is_not_told_the_patient_left_when_the_patient_replaces_a_socket(room: Room):
    async with socket(room, room.clinician) as clinician, socket(room, room.patient) as first:
        await welcomed(clinician, "clinician")
        await welcomed(first, "patient")
        await receive(clinician, "peer-joined")
        async with socket(room, room.patient) as second:
            await welcomed(second, "patient")
            assert (await closed(first))[1] == 4409
            heard = await still_open(clinician)
            assert "peer-left" not in [m["type"] for m in heard], heard  # the patient is still in the room
