"""The development mailbox: every email the app "sent" when no SMTP_URL is set. Never in production."""

from __future__ import annotations

import base64
import uuid
from typing import Any

from litestar import Controller, Request, get
from litestar.datastructures import State
from litestar.di import NamedDependency
from litestar.params import FromPath
from litestar.response import Response, Template
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from telehealth.lib.dependencies import is_loopback_client
from telehealth.lib.errors import NotFound
from telehealth.notifications.models import DevMailboxMessage


def _only_in_development(request: Request[Any, Any, Any], state: State) -> None:
    """Outside production, with no SMTP server, and only to a browser on this machine: the mailbox holds every
    sign-in link and reset link the app sent, so anyone who could reach it could take any account."""
    if state.settings.is_production or state.settings.smtp_url or not is_loopback_client(request):
        raise NotFound("not_found", "There is nothing at this address.")


class DevMailboxController(Controller):
    path = "/dev/mailbox"
    include_in_schema = False

    @get("/")
    async def mailbox(self, request: Request, state: State, db_session: NamedDependency[AsyncSession]) -> Template:
        _only_in_development(request, state)
        messages = (
            (await db_session.execute(select(DevMailboxMessage).order_by(col(DevMailboxMessage.created_at).desc()).limit(200)))
            .scalars()
            .all()
        )
        return Template("notifications/mailbox.html", context={"messages": messages})

    @get("/{message_id:uuid}")
    async def message(
        self, request: Request, state: State, message_id: FromPath[uuid.UUID], db_session: NamedDependency[AsyncSession]
    ) -> Template:
        _only_in_development(request, state)
        message = await db_session.get(DevMailboxMessage, message_id)
        if message is None:
            raise NotFound("not_found", "There is no such message.")
        return Template("notifications/message.html", context={"message": message})

    @get("/{message_id:uuid}/attachments/{index:int}")
    async def attachment(
        self,
        request: Request,
        state: State,
        message_id: FromPath[uuid.UUID],
        index: FromPath[int],
        db_session: NamedDependency[AsyncSession],
    ) -> Response[bytes]:
        """Download one attachment as it was sent (a calendar invite opens in the reader's calendar)."""
        _only_in_development(request, state)
        message = await db_session.get(DevMailboxMessage, message_id)
        if message is None or not 0 <= index < len(message.attachments):
            raise NotFound("not_found", "There is no such attachment.")
        kept = message.attachments[index]
        content = base64.b64decode(kept["content"]) if kept.get("base64") else kept["content"].encode()
        media_type = kept["content_type"] + (f"; method={kept['method']}" if kept.get("method") else "")
        if media_type.startswith("text/"):
            media_type += "; charset=utf-8"
        filename = kept["filename"].replace('"', "").replace("\\", "")
        return Response(content, media_type=media_type, headers={"Content-Disposition": f'attachment; filename="{filename}"'})
