"""Anchors: the chain's head written outside the database, one JSON line each, to a file only ever appended
to (AUDIT_ANCHOR_PATH; in production on append-only storage, e.g. `chattr +a` or a synced object-lock bucket).

The HMAC key stops anyone without it from forging hashes; anchors catch what the key cannot: events cut
from the end of the chain, or a chain rewritten by someone who has the key. `verify-audit` checks every
anchor against the chain, then anchors the head it verified.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from telehealth.settings import Settings

EMBEDDED_ANCHOR_FILE = "audit-anchors.jsonl"


@dataclass(frozen=True)
class Anchor:
    chain_seq: int
    row_hash: str
    key_id: str | None
    anchored_at: str
    line: int = 0  # where in the file (for the report)

    def to_json(self) -> str:
        return json.dumps({"chain_seq": self.chain_seq, "row_hash": self.row_hash, "key_id": self.key_id, "anchored_at": self.anchored_at})


@dataclass(frozen=True)
class AnchorFile:
    anchors: tuple[Anchor, ...]
    unreadable_lines: tuple[int, ...]  # e.g. a line cut short by a crash mid-write; reported, not trusted


def anchor_path(settings: Settings) -> Path | None:
    """AUDIT_ANCHOR_PATH; the embedded demo anchors in its data folder by default; else none."""
    if settings.audit_anchor_path is not None:
        return settings.audit_anchor_path
    if not settings.database_url:
        return settings.embedded_data_dir.parent / EMBEDDED_ANCHOR_FILE
    return None


def read_anchors(path: Path | None) -> AnchorFile:
    if path is None or not path.exists():
        return AnchorFile((), ())
    anchors, unreadable = [], []
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                item = json.loads(line)
                anchors.append(
                    Anchor(int(item["chain_seq"]), str(item["row_hash"]), item.get("key_id"), str(item.get("anchored_at", "")), number)
                )
            except (ValueError, KeyError, TypeError):
                unreadable.append(number)
    return AnchorFile(tuple(anchors), tuple(unreadable))


def last_anchored_seq(path: Path) -> int:
    """The chain_seq of the file's last readable anchor (0 when none), reading only its end."""
    if not path.exists():
        return 0
    with path.open("rb") as handle:
        handle.seek(0, os.SEEK_END)
        handle.seek(max(0, handle.tell() - 8192))
        tail = handle.read().decode("utf-8", errors="replace").splitlines()
    for line in reversed(tail):
        try:
            return int(json.loads(line)["chain_seq"])
        except (ValueError, KeyError, TypeError):
            continue
    return 0


def append_anchor(path: Path, *, chain_seq: int, row_hash: str, key_id: str | None, now: datetime) -> Anchor:
    """Append one line and flush it to disk (O_APPEND: concurrent writers never overwrite each other)."""
    anchor = Anchor(chain_seq, row_hash, key_id, now.isoformat())
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(descriptor, (anchor.to_json() + "\n").encode())
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
    return anchor
