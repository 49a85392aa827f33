"""The built-in video room's signalling protocol, as pure functions: what a browser may send, what one app
process tells the others (through PostgreSQL NOTIFY), and the close codes. docs/architecture.md, "The video
room", describes the whole exchange.

A browser sends JSON text frames: `{"type": "signal", "description": {"type": "offer"|"answer"|"rollback",
"sdp": "..."}}`, `{"type": "signal", "candidate": {"candidate": "...", "sdpMid": ..., "sdpMLineIndex": ...,
"usernameFragment": ...}}` or `{"type": "leave"}`. Nothing else is relayed: signalling carries session
descriptions and ICE candidates only, never words a person typed."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import zlib
from dataclasses import dataclass
from datetime import datetime
from enum import IntEnum
from typing import Any

MAX_FRAME_CHARS = 64_000  # an SDP offer with every codec is ~6 kB; a frame this large is not signalling
MAX_SDP_CHARS = 60_000
MAX_CANDIDATE_CHARS = 2_000
NOTIFY_PAYLOAD_LIMIT = 7_900  # PostgreSQL refuses a NOTIFY payload of 8000 bytes or more
DESCRIPTION_TYPES = frozenset({"offer", "answer", "rollback"})
CANDIDATE_KEYS = frozenset({"candidate", "sdpMid", "sdpMLineIndex", "usernameFragment"})


class RoomClose(IntEnum):
    """WebSocket close codes the room's page explains to people (4000-4999 are the application's own)."""

    LEFT = 1000
    NOT_TEXT = 1003
    TOO_LARGE = 1009
    NOT_PROTOCOL = 4400
    NOT_SIGNED_IN = 4401
    NOT_ALLOWED = 4403
    NO_SUCH_ROOM = 4404
    JOINED_ELSEWHERE = 4409
    WINDOW_CLOSED = 4410


class ProtocolError(ValueError):
    """A frame that is not the room's protocol; `code` is logged (never the frame's content)."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


def parse_client_frame(raw: str) -> dict[str, Any]:
    """The browser's frame, checked field by field; anything else is a ProtocolError."""
    if len(raw) > MAX_FRAME_CHARS:
        raise ProtocolError("frame_too_large")
    try:
        message = json.loads(raw)
    except ValueError:
        raise ProtocolError("not_json") from None
    if not isinstance(message, dict):
        raise ProtocolError("not_an_object")
    kind = message.get("type")
    if kind == "leave" and set(message) == {"type"}:
        return {"type": "leave"}
    if kind != "signal":
        raise ProtocolError("unknown_type")
    if set(message) == {"type", "description"}:
        return {"type": "signal", "description": _description(message["description"])}
    if set(message) == {"type", "candidate"}:
        return {"type": "signal", "candidate": _candidate(message["candidate"])}
    raise ProtocolError("signal_fields")


def _description(value: Any) -> dict[str, str]:
    if not isinstance(value, dict) or set(value) - {"type", "sdp"} or value.get("type") not in DESCRIPTION_TYPES:
        raise ProtocolError("description_fields")
    sdp = value.get("sdp", "")
    if not isinstance(sdp, str) or len(sdp) > MAX_SDP_CHARS or (value["type"] != "rollback" and not sdp.startswith("v=0")):
        raise ProtocolError("description_sdp")
    return {"type": value["type"], "sdp": sdp}


def _candidate(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict) or not set(value) <= CANDIDATE_KEYS or "candidate" not in value:
        raise ProtocolError("candidate_fields")
    candidate, mid, index, fragment = value["candidate"], value.get("sdpMid"), value.get("sdpMLineIndex"), value.get("usernameFragment")
    if not isinstance(candidate, str) or len(candidate) > MAX_CANDIDATE_CHARS or (candidate and not candidate.startswith("candidate:")):
        raise ProtocolError("candidate_value")
    if mid is not None and (not isinstance(mid, str) or len(mid) > 64):
        raise ProtocolError("candidate_mid")
    if index is not None and (not isinstance(index, int) or isinstance(index, bool) or not 0 <= index <= 64):
        raise ProtocolError("candidate_index")
    if fragment is not None and (not isinstance(fragment, str) or len(fragment) > 256):
        raise ProtocolError("candidate_fragment")
    return {"candidate": candidate, "sdpMid": mid, "sdpMLineIndex": index, "usernameFragment": fragment}


@dataclass(frozen=True)
class Envelope:
    """What one app process tells the others about a room: who (`participant`, on connection `connection`)
    said what (`kind`: hello on joining, here in answer to a hello, bye on leaving, signal to relay)."""

    participant: str
    connection: str
    kind: str
    data: dict[str, Any] | None = None

    def encode(self) -> str:
        """JSON, deflated when it would not fit a NOTIFY payload (SDP compresses about threefold)."""
        plain = json.dumps({"p": self.participant, "c": self.connection, "k": self.kind, "d": self.data}, separators=(",", ":"))
        if len(plain.encode()) < NOTIFY_PAYLOAD_LIMIT:
            return plain
        packed = "z" + base64.b64encode(zlib.compress(plain.encode(), 9)).decode()
        if len(packed) >= NOTIFY_PAYLOAD_LIMIT:
            raise ProtocolError("frame_too_large")
        return packed

    @classmethod
    def decode(cls, payload: bytes | str) -> Envelope:
        text = payload.decode() if isinstance(payload, bytes) else payload
        if text.startswith("z"):
            text = zlib.decompress(base64.b64decode(text[1:])).decode()
        raw = json.loads(text)
        return cls(participant=raw["p"], connection=raw["c"], kind=raw["k"], data=raw.get("d"))


def room_channel(appointment_hex: str) -> str:
    """The NOTIFY channel of one room (an identifier under PostgreSQL's 63 characters; an opaque id)."""
    return f"room_{appointment_hex}"


def ice_servers(urls: tuple[str, ...], *, turn_secret: str | None, valid_until: datetime) -> list[dict[str, Any]]:
    """The browser's RTCIceServer list. TURN gets time-limited credentials made from the shared secret the
    TURN server also holds (coturn's use-auth-secret: username "<expiry>:<random>", password its HMAC-SHA1),
    so a credential copied out of a browser stops working when the visit's window closes."""
    stun = [url for url in urls if url.startswith("stun")]
    turn = [url for url in urls if url.startswith("turn")]
    servers: list[dict[str, Any]] = [{"urls": stun}] if stun else []
    if turn and turn_secret:
        username = f"{int(valid_until.timestamp())}:{secrets.token_urlsafe(9)}"
        credential = base64.b64encode(hmac.new(turn_secret.encode(), username.encode(), hashlib.sha1).digest()).decode()
        servers.append({"urls": turn, "username": username, "credential": credential})
    return servers
