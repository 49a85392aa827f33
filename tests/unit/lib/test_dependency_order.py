"""Dependencies resolved in turn, in the request's own task, Litestar's own values passed as they are
(telehealth/lib/dependency_order.py)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any, NoReturn

import pytest
from litestar import Litestar, Request, get
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide
from litestar.params import FromQuery
from litestar.testing import AsyncTestClient
from litestar.types import Scope

from telehealth.lib import dependency_order
from telehealth.lib.dependency_order import resolve_dependencies_in_turn

resolve_dependencies_in_turn()


async def test_a_depths_dependencies_run_in_the_requests_own_task() -> None:
    tasks: dict[str, asyncio.Task[object] | None] = {}

    def first() -> int:
        tasks["first"] = asyncio.current_task()
        return 1

    def second() -> int:
        tasks["second"] = asyncio.current_task()
        return 2

    async def opened() -> AsyncIterator[int]:
        tasks["opened"] = asyncio.current_task()
        yield 3

    @get(
        "/",
        dependencies={
            "first": Provide(first, sync_to_thread=False),
            "second": Provide(second, sync_to_thread=False),
            "opened": Provide(opened),
        },
    )
    async def handler(first: NamedDependency[int], second: NamedDependency[int], opened: NamedDependency[int]) -> dict[str, int]:
        tasks["handler"] = asyncio.current_task()
        return {"sum": first + second + opened}

    async with AsyncTestClient(Litestar([handler])) as client:
        response = await client.get("/")
    assert response.json() == {"sum": 6}
    assert len({id(task) for task in tasks.values()}) == 1, tasks  # Litestar's own: a task per dependency


async def test_a_refusal_among_the_plain_dependencies_opens_no_generator() -> None:
    started: list[str] = []

    def refuse() -> int:
        raise PermissionError("no")

    async def session() -> AsyncIterator[int]:
        started.append("session")
        yield 1

    @get("/", dependencies={"refuse": Provide(refuse, sync_to_thread=False), "session": Provide(session)})
    async def handler(refuse: NamedDependency[int], session: NamedDependency[int]) -> None:
        raise AssertionError("not reached")

    async with AsyncTestClient(Litestar([handler])) as client:
        assert (await client.get("/")).status_code == 500
    assert started == []


async def test_a_failure_after_a_generator_started_is_thrown_into_it() -> None:
    seen: list[BaseException] = []

    async def session() -> AsyncIterator[int]:
        try:
            yield 1
        except BaseException as error:
            seen.append(error)
            raise

    def needs_session(session: NamedDependency[int]) -> int:
        raise LookupError("later")

    @get("/", dependencies={"session": Provide(session), "needs_session": Provide(needs_session, sync_to_thread=False)})
    async def handler(needs_session: NamedDependency[int]) -> None:
        raise AssertionError("not reached")

    async with AsyncTestClient(Litestar([handler])) as client:
        assert (await client.get("/")).status_code == 500
    assert [type(error) for error in seen] == [LookupError]


async def test_litestars_own_values_reach_a_dependency_as_they_are_and_the_clients_are_still_parsed() -> None:
    seen: dict[str, object] = {}

    def own(request: Request[Any, Any, Any], state: State, scope: Scope) -> int:
        seen.update(request=request.scope is scope, state=type(state) is State)
        return 1

    def number(n: FromQuery[int]) -> int:  # a query parameter: the client's, parsed and refused as ever
        return n

    provided = Provide(own, sync_to_thread=False)

    def refuse(*args: object, **kwargs: object) -> NoReturn:
        raise AssertionError("the signature model parsed Litestar's own values")

    @get("/", dependencies={"own": provided, "number": Provide(number, sync_to_thread=False)})
    async def handler(own: NamedDependency[int], number: NamedDependency[int]) -> dict[str, int]:
        return {"sum": own + number}

    app = Litestar([handler])
    provided.signature_model.parse_values_from_connection_kwargs = refuse  # type: ignore[method-assign]
    async with AsyncTestClient(app) as client:
        assert (await client.get("/", params={"n": "2"})).json() == {"sum": 3}
        refused = await client.get("/", params={"n": "two"})
    assert seen == {"request": True, "state": True}
    assert refused.status_code == 400 and "n" in refused.text


async def test_a_handler_taking_nothing_from_the_client_gets_its_arguments_as_given_and_one_that_does_is_parsed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    parsed: list[str] = []
    litestar_parse = dependency_order._litestar_parse

    def counted(cls: Any, connection: Any, kwargs: dict[str, Any]) -> dict[str, Any]:
        parsed.append(cls.__name__)
        result: dict[str, Any] = litestar_parse(cls, connection, kwargs)
        return result

    monkeypatch.setattr(dependency_order, "_litestar_parse", counted)
    marker = object()

    def made() -> object:
        return marker

    seen: dict[str, object] = {}

    @get("/given", dependencies={"made": Provide(made, sync_to_thread=False)})
    async def given(made: NamedDependency[object], request: Request[Any, Any, Any], state: State) -> dict[str, bool]:
        seen.update(same=made is marker, state=type(state) is State, request=isinstance(request, Request))
        return {"ok": True}

    @get("/items", dependencies={"made": Provide(made, sync_to_thread=False)})
    async def item(number: FromQuery[int], made: NamedDependency[object]) -> dict[str, int]:
        return {"number": number}

    async with AsyncTestClient(Litestar([given, item])) as client:
        assert (await client.get("/given")).json() == {"ok": True}
        assert parsed == []  # no signature model ran: the handler's parameters were all ours
        assert (await client.get("/items", params={"number": "7"})).json() == {"number": 7}
        refused = await client.get("/items", params={"number": "seven"})
    assert seen == {"same": True, "state": True, "request": True}
    assert parsed == ["item_signature_model"] * 2  # the query parameter is the client's: parsed and refused as ever
    assert refused.status_code == 400 and "number" in refused.text
