"""Settings declared next to their fields: each says which environment variable it reads, its bounds
(`msgspec.Meta`) and, for a value with a format of its own, the check of that format.

    port: int = setting(8000, "PORT", ge=1, le=65535)

`read_declared(cls)` reads every declared variable of a dataclass (an empty one counts as unset) and
`check_declared(instance)` checks every value against its declaration, whether it came from the
environment or a keyword argument. Either refuses with a `SettingsError` that names the variable, says
what it must be, and quotes what it got. msgspec converts text to int, float and date and applies the
bounds; booleans and paths are read here (msgspec takes neither `yes/on` nor a `Path` from text).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from datetime import date
from functools import cache
from pathlib import Path
from typing import Annotated, Any, Union, get_args, get_origin, get_type_hints

import msgspec

TRUE_WORDS = {"1", "true", "yes", "on"}
FALSE_WORDS = {"0", "false", "no", "off"}


class SettingsError(ValueError):
    """A setting is missing or malformed; the message names the variable."""


@dataclasses.dataclass(frozen=True)
class FromEnv:
    name: str  # the environment variable
    meta: msgspec.Meta | None = None  # bounds: ge, le, gt ...
    parse: Callable[[str], Any] | None = None  # text -> value, for a type msgspec does not read from text
    check: Callable[[Any], str | None] | None = None  # the reason a value is wrong (after the name), or None


def setting(
    default: Any = dataclasses.MISSING,
    env: str = "",
    *,
    ge: float | None = None,
    le: float | None = None,
    gt: float | None = None,
    parse: Callable[[str], Any] | None = None,
    check: Callable[[Any], str | None] | None = None,
    default_factory: Any = dataclasses.MISSING,
) -> Any:
    """A dataclass field read from `env`, with its bounds and format check declared in one place."""
    # Any: msgspec.Meta's stub spells out one overload per valid pair of bounds, which a dict of them cannot pick
    bounds: dict[str, Any] = {key: value for key, value in (("ge", ge), ("le", le), ("gt", gt)) if value is not None}
    spec = FromEnv(env, msgspec.Meta(**bounds) if bounds else None, parse, check)
    return dataclasses.field(default=default, default_factory=default_factory, metadata={"env": spec})


def declared_fields(cls: type) -> list[tuple[dataclasses.Field[Any], FromEnv, Any]]:
    """(field, declaration, type) of each field of `cls` that reads a variable."""
    hints = _hints(cls)
    return [(item, item.metadata["env"], hints[item.name]) for item in dataclasses.fields(cls) if "env" in item.metadata]


@cache
def _hints(cls: type) -> dict[str, Any]:
    return get_type_hints(cls)


def _base_type(hint: Any) -> tuple[Any, bool]:
    """The type without `| None`, and whether None is allowed."""
    if get_origin(hint) is Union or type(hint).__name__ == "UnionType":
        others = [arg for arg in get_args(hint) if arg is not type(None)]
        return others[0], len(others) < len(get_args(hint))
    return hint, False


def _wanted(base: Any, meta: msgspec.Meta | None) -> str:
    """What a value must be, in words: `a whole number from 1 to 65535`."""
    noun = {int: "a whole number", float: "a number", bool: "true or false", date: "a date like 2026-12-31"}.get(base, "text")
    if meta is None:
        return noun
    low = meta.ge if meta.ge is not None else meta.gt
    if low is not None and meta.le is not None:
        return f"{noun} from {low:g} to {meta.le:g}" if meta.gt is None else f"{noun} above {low:g}, at most {meta.le:g}"
    if meta.ge is not None:
        return f"{noun} of at least {meta.ge:g}"
    if meta.gt is not None:
        return f"{noun} above {meta.gt:g}"
    return f"{noun} of at most {meta.le:g}"


def _parse_bool(text: str) -> bool:
    if text.lower() in TRUE_WORDS:
        return True
    if text.lower() in FALSE_WORDS:
        return False
    raise ValueError(text)


def _from_text(spec: FromEnv, base: Any, raw: str) -> Any:
    text = raw.strip()
    try:
        if spec.parse is not None:
            return spec.parse(text)
        if base is bool:
            return _parse_bool(text)
        if base is Path:
            return Path(raw)
        if base in (int, float, date):
            return msgspec.convert(text, base, strict=False)
        return raw
    except (ValueError, msgspec.ValidationError) as exc:
        reason = str(exc) if spec.parse is not None else _wanted(base, spec.meta)
        raise SettingsError(f"{spec.name} must be {reason}, got {raw!r}") from exc


def check_value(spec: FromEnv, hint: Any, value: Any, *, raw: str | None = None) -> None:
    """Refuse `value` unless it has the declared type, bounds and format (quoting `raw`, the text it came from)."""
    base, optional = _base_type(hint)
    if value is None and optional:
        return
    if spec.meta is not None or base in (int, float):
        try:
            msgspec.convert(value, Annotated[base, spec.meta] if spec.meta is not None else base)
        except msgspec.ValidationError as exc:
            raise SettingsError(f"{spec.name} must be {_wanted(base, spec.meta)}, got {value if raw is None else raw!r}") from exc
    if spec.check is not None and (reason := spec.check(value)):
        raise SettingsError(f"{spec.name} {reason}")


def read_declared(cls: type) -> dict[str, Any]:
    """The value of each declared variable that is set (and not empty), checked; unset ones are left out."""
    values: dict[str, Any] = {}
    for item, spec, hint in declared_fields(cls):
        raw = os.environ.get(spec.name)
        if raw is None or raw == "":
            continue
        value = _from_text(spec, _base_type(hint)[0], raw)
        check_value(spec, hint, value, raw=raw)
        values[item.name] = value
    return values


def check_declared(instance: Any) -> None:
    """Check every declared field's current value (settings made with keyword arguments, as tests do)."""
    for item, spec, hint in declared_fields(type(instance)):
        check_value(spec, hint, getattr(instance, item.name))
