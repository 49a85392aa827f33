import pytest

from tests.integration.dosing.helpers import Mail


@pytest.fixture
def mail(session_factory, settings, clock, smtp) -> Mail:
    return Mail(session_factory, settings, clock, smtp)
