"""Who acts: base types the areas fill, so lib and the other base packages need no area.

`Actor` is what the audit trail records (audit.service writes it); `SignedInPerson` is what any signed-in
person offers (accounts.sessions.SignedIn is the one the auth middleware puts on each request)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class Actor:
    """Who is acting, and from where. Built once per request (or as `system` in the worker)."""

    user_id: uuid.UUID | None
    role: str
    ip: str | None = None
    user_agent: str | None = None

    @classmethod
    def system(cls) -> Actor:
        return cls(user_id=None, role="system")

    @classmethod
    def anonymous(cls, ip: str | None = None, user_agent: str | None = None) -> Actor:
        return cls(user_id=None, role="anonymous", ip=ip, user_agent=user_agent)


class SignedInPerson(Protocol):
    """The signed-in person, as far as the base packages need to know them."""

    @property
    def user_id(self) -> uuid.UUID: ...

    @property
    def role(self) -> str: ...  # accounts' Role is a StrEnum: its members are strings
