import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.conftest import empty_all_tables


@pytest.fixture(autouse=True)
async def empty_tables(engine: AsyncEngine) -> None:
    await empty_all_tables(engine)
