"""The video room's signalling protocol as pure functions: what a browser may send (session descriptions and ICE
candidates only, never words a person typed), what one app process tells the others through NOTIFY (deflated
when it would not fit PostgreSQL's 8000 bytes), and the TURN credentials (coturn's use-auth-secret)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import random
from datetime import UTC, datetime

import pytest

from telehealth.scheduling.room_protocol import (
    MAX_FRAME_CHARS,
    NOTIFY_PAYLOAD_LIMIT,
    Envelope,
    ProtocolError,
    ice_servers,
    parse_client_frame,
)

OFFER_SDP = "v=0\r\no=- 4611731400430051336 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0 1\r\n"
CANDIDATE = "candidate:842163049 1 udp 1677729535 203.0.113.7 46154 typ srflx raddr 0.0.0.0 rport 0 generation 0"


def frame(message: object) -> str:
    return json.dumps(message)


def refused(raw: str) -> str:
    with pytest.raises(ProtocolError) as caught:
        parse_client_frame(raw)
    return caught.value.code


# --- What a browser may send ------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["offer", "answer"])
def test_a_session_description_is_accepted(kind):
    parsed = parse_client_frame(frame({"type": "signal", "description": {"type": kind, "sdp": OFFER_SDP}}))
    assert parsed == {"type": "signal", "description": {"type": kind, "sdp": OFFER_SDP}}


def test_a_rollback_needs_no_sdp():
    assert parse_client_frame(frame({"type": "signal", "description": {"type": "rollback"}})) == {
        "type": "signal",
        "description": {"type": "rollback", "sdp": ""},
    }


def test_a_candidate_is_accepted_with_its_missing_fields_as_null():
    parsed = parse_client_frame(frame({"type": "signal", "candidate": {"candidate": CANDIDATE, "sdpMid": "0", "sdpMLineIndex": 0}}))
    assert parsed == {"type": "signal", "candidate": {"candidate": CANDIDATE, "sdpMid": "0", "sdpMLineIndex": 0, "usernameFragment": None}}


def test_the_end_of_candidates_is_an_empty_candidate():
    parsed = parse_client_frame(
        frame({"type": "signal", "candidate": {"candidate": "", "sdpMid": "1", "sdpMLineIndex": 1, "usernameFragment": "abcd"}})
    )
    assert parsed["candidate"] == {"candidate": "", "sdpMid": "1", "sdpMLineIndex": 1, "usernameFragment": "abcd"}


def test_leave_is_accepted():
    assert parse_client_frame('{"type": "leave"}') == {"type": "leave"}


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        ("hello", "not_json"),
        ('{"type": "signal"', "not_json"),
        ("", "not_json"),
        ("[1, 2]", "not_an_object"),
        ('"signal"', "not_an_object"),
        ("null", "not_an_object"),
        (frame({"type": "chat", "text": "I feel unsafe tonight"}), "unknown_type"),
        (frame({"type": "join"}), "unknown_type"),
        (frame({"description": {"type": "offer", "sdp": OFFER_SDP}}), "unknown_type"),
        (frame({"type": "leave", "text": "bye for now"}), "unknown_type"),
        # Words a person typed, riding along a real signal, are refused (never relayed nor kept).
        (frame({"type": "signal", "description": {"type": "offer", "sdp": OFFER_SDP}, "text": "I feel unsafe tonight"}), "signal_fields"),
        (frame({"type": "signal", "candidate": {"candidate": CANDIDATE}, "text": "call me"}), "signal_fields"),
        (frame({"type": "signal"}), "signal_fields"),
        (
            frame({"type": "signal", "description": {"type": "offer", "sdp": OFFER_SDP}, "candidate": {"candidate": CANDIDATE}}),
            "signal_fields",
        ),
        (frame({"type": "signal", "description": {"type": "offer", "sdp": OFFER_SDP, "text": "hi"}}), "description_fields"),
        (frame({"type": "signal", "description": {"type": "pranswer", "sdp": OFFER_SDP}}), "description_fields"),
        (frame({"type": "signal", "description": "v=0"}), "description_fields"),
        (frame({"type": "signal", "description": {"type": "offer", "sdp": "I feel unsafe tonight"}}), "description_sdp"),
        (frame({"type": "signal", "description": {"type": "answer", "sdp": ""}}), "description_sdp"),
        (frame({"type": "signal", "description": {"type": "offer"}}), "description_sdp"),
        (frame({"type": "signal", "description": {"type": "offer", "sdp": 0}}), "description_sdp"),
        (frame({"type": "signal", "description": {"type": "offer", "sdp": "v=0\r\n" + "a" * 60_000}}), "description_sdp"),
        (frame({"type": "signal", "candidate": {"candidate": CANDIDATE, "text": "hi"}}), "candidate_fields"),
        (frame({"type": "signal", "candidate": {"sdpMid": "0"}}), "candidate_fields"),
        (frame({"type": "signal", "candidate": CANDIDATE}), "candidate_fields"),
        (frame({"type": "signal", "candidate": {"candidate": "I feel unsafe tonight"}}), "candidate_value"),
        (frame({"type": "signal", "candidate": {"candidate": 7}}), "candidate_value"),
        (frame({"type": "signal", "candidate": {"candidate": CANDIDATE, "sdpMid": 0}}), "candidate_mid"),
        (frame({"type": "signal", "candidate": {"candidate": CANDIDATE, "sdpMLineIndex": True}}), "candidate_index"),
        (frame({"type": "signal", "candidate": {"candidate": CANDIDATE, "sdpMLineIndex": -1}}), "candidate_index"),
        (frame({"type": "signal", "candidate": {"candidate": CANDIDATE, "sdpMLineIndex": 65}}), "candidate_index"),
        (frame({"type": "signal", "candidate": {"candidate": CANDIDATE, "sdpMLineIndex": "0"}}), "candidate_index"),
        (frame({"type": "signal", "candidate": {"candidate": CANDIDATE, "sdpMLineIndex": 0.5}}), "candidate_index"),
        (frame({"type": "signal", "candidate": {"candidate": CANDIDATE, "usernameFragment": 5}}), "candidate_fragment"),
    ],
)
def test_anything_else_is_refused_with_a_code(raw, code):
    assert refused(raw) == code


def test_an_oversize_frame_is_refused_before_it_is_parsed():
    at_limit = frame({"type": "signal", "description": {"type": "offer", "sdp": "v=0\r\n"}})
    at_limit = at_limit[:-2] + " " * (MAX_FRAME_CHARS - len(at_limit)) + at_limit[-2:]
    assert len(at_limit) == MAX_FRAME_CHARS and parse_client_frame(at_limit)["description"]["sdp"] == "v=0\r\n"
    assert refused(at_limit[:-2] + " " + at_limit[-2:]) == "frame_too_large"
    assert refused("x" * (MAX_FRAME_CHARS + 1)) == "frame_too_large"  # not even read as JSON


def test_the_error_names_its_code_only():
    with pytest.raises(ProtocolError) as caught:
        parse_client_frame(frame({"type": "chat", "text": "I feel unsafe tonight"}))
    assert str(caught.value) == "unknown_type" and "unsafe" not in repr(caught.value)


# --- What one app process tells the others ------------------------------------------------------------------


def repetitive_sdp(chars: int) -> str:
    lines = ["v=0", "o=- 4611731400430051336 2 IN IP4 127.0.0.1", "s=-", "t=0 0"]
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


def test_a_small_envelope_is_plain_json_and_round_trips():
    envelope = Envelope("clinician", "ab12cd34ef56ab78", "signal", {"description": {"type": "offer", "sdp": OFFER_SDP}})
    encoded = envelope.encode()
    assert encoded.startswith("{") and json.loads(encoded)["k"] == "signal"
    assert Envelope.decode(encoded) == envelope
    assert Envelope.decode(encoded.encode()) == envelope  # as the LISTEN connection hands it over


def test_a_hello_without_data_round_trips():
    hello = Envelope("patient", "0011223344556677", "hello")
    assert Envelope.decode(hello.encode()) == hello and hello.encode().startswith("{")


def test_a_large_repetitive_sdp_is_deflated_under_the_notify_limit_and_decodes_equal():
    sdp = repetitive_sdp(30_000)
    assert len(sdp) >= 30_000 and parse_client_frame(frame({"type": "signal", "description": {"type": "offer", "sdp": sdp}}))
    envelope = Envelope("clinician", "ab12cd34ef56ab78", "signal", {"description": {"type": "offer", "sdp": sdp}})
    encoded = envelope.encode()
    assert encoded.startswith("z") and len(encoded.encode()) < NOTIFY_PAYLOAD_LIMIT
    assert Envelope.decode(encoded) == envelope
    assert Envelope.decode(encoded.encode()).data == {"description": {"type": "offer", "sdp": sdp}}


def test_an_envelope_just_under_the_limit_stays_plain_and_one_at_it_is_deflated():
    empty = len(Envelope("patient", "0011223344556677", "signal", {"description": {"type": "offer", "sdp": "v=0"}}).encode())
    under = Envelope(
        "patient", "0011223344556677", "signal", {"description": {"type": "offer", "sdp": "v=0" + "a" * (NOTIFY_PAYLOAD_LIMIT - 1 - empty)}}
    )
    at = Envelope(
        "patient", "0011223344556677", "signal", {"description": {"type": "offer", "sdp": "v=0" + "a" * (NOTIFY_PAYLOAD_LIMIT - empty)}}
    )
    assert len(under.encode()) == NOTIFY_PAYLOAD_LIMIT - 1 and under.encode().startswith("{")
    assert at.encode().startswith("z") and Envelope.decode(at.encode()) == at


def test_an_incompressible_sdp_that_cannot_fit_notify_is_too_large():
    noise = random.Random(7)
    sdp = "v=0\r\n" + "".join(noise.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/") for _ in range(40_000))
    parse_client_frame(frame({"type": "signal", "description": {"type": "offer", "sdp": sdp}}))  # a valid frame...
    with pytest.raises(ProtocolError) as caught:  # ...that no NOTIFY can carry
        Envelope("clinician", "ab12cd34ef56ab78", "signal", {"description": {"type": "offer", "sdp": sdp}}).encode()
    assert caught.value.code == "frame_too_large"


# --- ICE servers -------------------------------------------------------------------------------------------

CLOSES_AT = datetime(2026, 11, 23, 16, 15, tzinfo=UTC)


def test_stun_only_has_no_credentials():
    assert ice_servers(("stun:stun.example.org:3478",), turn_secret=None, valid_until=CLOSES_AT) == [
        {"urls": ["stun:stun.example.org:3478"]}
    ]
    assert ice_servers(("stun:stun.example.org:3478",), turn_secret="s3cret", valid_until=CLOSES_AT) == [
        {"urls": ["stun:stun.example.org:3478"]}
    ]


def test_no_urls_no_servers():
    assert ice_servers((), turn_secret="s3cret", valid_until=CLOSES_AT) == []


def test_turn_without_a_secret_is_left_out():
    assert ice_servers(("stun:s.example.org", "turn:t.example.org"), turn_secret=None, valid_until=CLOSES_AT) == [
        {"urls": ["stun:s.example.org"]}
    ]


def test_turn_gets_time_limited_credentials_from_the_shared_secret():
    urls = ("stun:s.example.org:3478", "turn:t.example.org:3478?transport=udp", "turns:t.example.org:5349?transport=tcp")
    stun, turn = ice_servers(urls, turn_secret="s3cret", valid_until=CLOSES_AT)
    assert stun == {"urls": ["stun:s.example.org:3478"]}
    assert turn["urls"] == ["turn:t.example.org:3478?transport=udp", "turns:t.example.org:5349?transport=tcp"]
    expiry, _, nonce = turn["username"].partition(":")
    assert expiry == str(int(CLOSES_AT.timestamp())) == "1795450500" and nonce
    expected = base64.b64encode(hmac.new(b"s3cret", turn["username"].encode(), hashlib.sha1).digest()).decode()
    assert turn["credential"] == expected
    assert set(turn) == {"urls", "username", "credential"}


def test_each_visit_gets_a_different_username():
    first = ice_servers(("turn:t.example.org",), turn_secret="s3cret", valid_until=CLOSES_AT)[0]
    second = ice_servers(("turn:t.example.org",), turn_secret="s3cret", valid_until=CLOSES_AT)[0]
    assert first["username"] != second["username"] and first["credential"] != second["credential"]
    assert first["username"].split(":")[0] == second["username"].split(":")[0]
