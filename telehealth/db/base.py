"""Metadata conventions and field helpers for SQLModel tables."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Table, inspect
from sqlmodel import Field, SQLModel

from telehealth.db.types import UTCDateTime
from telehealth.lib.clock import utc_now

# Stable constraint names make Alembic diffs and error handling (409 on a named constraint) predictable.
SQLModel.metadata.naming_convention = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = SQLModel.metadata


def uuid_primary_key() -> Any:
    """Opaque ids: every row that can appear in a URL is keyed by a random UUID."""
    return Field(default_factory=uuid.uuid4, primary_key=True)


def utc_timestamp(*, nullable: bool = False, index: bool = False, default_now: bool = False) -> Any:
    """A `timestamptz` column that only accepts aware datetimes."""
    if default_now:
        return Field(default_factory=utc_now, sa_type=UTCDateTime, nullable=nullable, index=index)
    return Field(default=None, sa_type=UTCDateTime, nullable=nullable, index=index)


def table_of(model: type[SQLModel]) -> Table:
    """The table=True model's Core table, for statements without ORM bookkeeping. (It is the model's
    `__table__`, which SQLModel sets when the class is made but its type does not declare.)"""
    table = inspect(model).local_table
    assert isinstance(table, Table), model
    return table


__all__ = ["SQLModel", "datetime", "metadata", "table_of", "utc_timestamp", "uuid_primary_key"]
