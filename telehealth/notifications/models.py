"""dev_mailbox_message: where mail goes when no SMTP_URL is set (development only)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Column, Text
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field

from telehealth.db.base import SQLModel, utc_timestamp, uuid_primary_key


class DevMailboxMessage(SQLModel, table=True):
    __tablename__ = "dev_mailbox_message"

    id: uuid.UUID = uuid_primary_key()
    to_address: str = Field(max_length=254, index=True)
    subject: str = Field(max_length=300)
    body_text: str = Field(sa_column=Column(Text, nullable=False))
    body_html: str = Field(sa_column=Column(Text, nullable=False))
    # [{"filename", "content_type", "content"}]: text parts as text, others base64 ("base64": true)
    attachments: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSONB, nullable=False, server_default="[]"))
    created_at: datetime = utc_timestamp(default_now=True)
