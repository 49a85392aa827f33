"""The built-in video room's signalling socket: WebRTC session descriptions and ICE candidates between the
appointment's patient and clinician, relayed through Litestar Channels on PostgreSQL LISTEN/NOTIFY, so two
people served by different app processes meet. The media itself flows browser to browser (or through TURN).

One socket per person in the room. On joining, the socket's process announces `hello` on the room's channel;
a process holding the other person's live socket answers `here`, tells its browser the peer joined, and records
the visit's start (both connected at once). Each browser then (re)starts its peer connection; the clinician's
makes the offer. Frames outside the protocol close the socket with a code, logged without their content."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from typing import Any
from urllib.parse import urlsplit

from litestar import Controller, WebSocket, websocket
from litestar.channels import ChannelsPlugin
from litestar.di import NamedDependency
from litestar.exceptions import WebSocketDisconnect
from litestar.params import FromPath

from telehealth.accounts.sessions import SignedIn
from telehealth.db.engine import transaction
from telehealth.lib.actors import Actor
from telehealth.lib.errors import DomainError, NotFound
from telehealth.scheduling.room_protocol import Envelope, ProtocolError, RoomClose, ice_servers, parse_client_frame, room_channel
from telehealth.scheduling.visits import RoomPass, admit_to_room, record_joined, record_left, record_visit_started

logger = logging.getLogger("telehealth.video_room")


class VideoRoomSocketController(Controller):
    include_in_schema = False

    @websocket("/rooms/{room_token:str}/signal")
    async def signal(self, socket: WebSocket[Any, Any, Any], room_token: FromPath[str], channels: NamedDependency[ChannelsPlugin]) -> None:
        await socket.accept()
        room = await _admit(socket, room_token)
        if room is not None:
            await RoomConnection(socket, channels, room).run()


async def _refuse(socket: WebSocket[Any, Any, Any], code: RoomClose, reason: str, message: str) -> None:
    logger.info("video room refused a connection: %s", reason)
    with contextlib.suppress(Exception):
        await socket.send_json({"type": "refused", "code": reason, "message": message})
        await socket.close(code=code)


async def _admit(socket: WebSocket[Any, Any, Any], room_token: str) -> RoomPass | None:
    """The room's pass for a signed-in participant arriving from our own pages, inside the window; else None."""
    origin, host = socket.headers.get("origin"), socket.headers.get("host")
    if not origin or urlsplit(origin).netloc != host:  # a page elsewhere cannot ride the visitor's cookie
        await _refuse(socket, RoomClose.NOT_ALLOWED, "room.cross_origin", "Open the room from the clinic's own site.")
        return None
    viewer: SignedIn | None = socket.scope.get("user")
    if viewer is None or viewer.must_enrol_two_factor or not viewer.two_factor_done:
        await _refuse(socket, RoomClose.NOT_SIGNED_IN, "auth.required", "Sign in again to join the visit.")
        return None
    state = socket.app.state
    try:
        async with transaction(state.session_factory) as session:
            return await admit_to_room(session, room_token=room_token, viewer=viewer, now=state.clock.now())
    except NotFound as error:
        await _refuse(socket, RoomClose.NO_SUCH_ROOM, error.code, error.detail)
    except DomainError as error:
        code = RoomClose.WINDOW_CLOSED if error.code == "appointment.join_closed" else RoomClose.NOT_ALLOWED
        await _refuse(socket, code, error.code, error.detail)
    return None


class RoomConnection:
    """One person's socket in one room, for as long as it lasts (never past the join window)."""

    def __init__(self, socket: WebSocket[Any, Any, Any], channels: ChannelsPlugin, room: RoomPass) -> None:
        self.socket, self.channels, self.room = socket, channels, room
        self.state = socket.app.state
        self.channel = room_channel(room.appointment_id.hex)
        self.connection = secrets.token_hex(8)  # this socket, among the room's (a second tab replaces the first)
        self.closed = asyncio.Event()
        self.peer: str | None = None  # the other person's live connection, as last announced (hello or here)
        viewer: SignedIn = socket.scope["user"]
        self.actor = Actor(
            viewer.user_id, viewer.role.value, socket.client.host if socket.client else None, socket.headers.get("user-agent")
        )

    async def run(self) -> None:
        async with transaction(self.state.session_factory) as session:
            connection_id = await record_joined(session, self.room, now=self.state.clock.now())
        subscriber = await self.channels.subscribe(self.channel)
        try:
            settings = self.state.settings
            await self.socket.send_json(
                {
                    "type": "welcome",
                    "participant": self.room.participant,
                    "closes_at": self.room.closes_at.isoformat(),
                    "ice_servers": ice_servers(
                        settings.video_ice_url_list, turn_secret=settings.video_turn_secret, valid_until=self.room.closes_at
                    ),
                }
            )
            async with subscriber.run_in_background(self.on_event):
                await self.tell_others("hello")
                seconds_left = (self.room.closes_at - self.state.clock.now()).total_seconds()
                try:
                    await asyncio.wait_for(self.relay_browser_frames(), timeout=max(seconds_left, 0.1))
                except TimeoutError:
                    await self.close(RoomClose.WINDOW_CLOSED)
        except (WebSocketDisconnect, OSError):
            pass
        finally:
            await self.channels.unsubscribe(subscriber)
            with contextlib.suppress(Exception):  # the others learn it from their own sockets' peer connection too
                await self.tell_others("bye")
            async with transaction(self.state.session_factory) as session:
                await record_left(session, connection_id=connection_id, appointment_id=self.room.appointment_id, now=self.state.clock.now())

    async def relay_browser_frames(self) -> None:
        while not self.closed.is_set():
            event = await self.socket.receive()
            if event["type"] == "websocket.disconnect":
                return
            raw = event.get("text")
            if not isinstance(raw, str):  # None: a bytes frame
                logger.info("video room closed a connection: not_text")
                return await self.close(RoomClose.NOT_TEXT)
            try:
                frame = parse_client_frame(raw)
                if frame["type"] == "leave":
                    return await self.close(RoomClose.LEFT)
                frame.pop("type")
                await self.tell_others("signal", frame)
            except ProtocolError as error:
                logger.info("video room closed a connection: %s", error.code)
                too_large = error.code == "frame_too_large"
                return await self.close(RoomClose.TOO_LARGE if too_large else RoomClose.NOT_PROTOCOL)

    async def tell_others(self, kind: str, data: dict[str, Any] | None = None) -> None:
        envelope = Envelope(self.room.participant, self.connection, kind, data)
        await self.channels.wait_published(envelope.encode(), self.channel)

    async def on_event(self, payload: bytes) -> None:
        envelope = Envelope.decode(payload)
        if envelope.connection == self.connection:
            return
        if envelope.participant == self.room.participant:
            if envelope.kind == "hello":  # the same person opened the room again elsewhere: that one stays
                await self.close(RoomClose.JOINED_ELSEWHERE)
            return
        if envelope.kind == "hello":
            self.peer = envelope.connection
            await self.tell_others("here")
            await self.send({"type": "peer-joined"})
            async with transaction(self.state.session_factory) as session:  # both are connected, now
                if await record_visit_started(session, self.room, actor=self.actor, now=self.state.clock.now()):
                    await self.send({"type": "visit-started"})
        elif envelope.kind == "here":
            self.peer = envelope.connection
            await self.send({"type": "peer-joined"})
        elif envelope.kind == "bye" and envelope.connection == self.peer:  # not the bye of a socket their newer one replaced
            self.peer = None
            await self.send({"type": "peer-left"})
        elif envelope.kind == "signal" and envelope.data is not None:
            await self.send({"type": "signal", **envelope.data})

    async def send(self, message: dict[str, Any]) -> None:
        if not self.closed.is_set():
            with contextlib.suppress(Exception):  # the socket went away meanwhile: run() cleans up
                await self.socket.send_json(message)

    async def close(self, code: RoomClose) -> None:
        if not self.closed.is_set():
            self.closed.set()
            with contextlib.suppress(Exception):
                await self.socket.close(code=code)
