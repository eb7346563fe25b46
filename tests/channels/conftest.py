"""The channel tests' own fake Bot API, one per test, so that what one test sends or
polls never shows in another's (or the server's, tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fakes import FakeTelegram


@pytest.fixture
def fake_telegram() -> Iterator[FakeTelegram]:
    fake = FakeTelegram().start()
    yield fake
    fake.stop()
