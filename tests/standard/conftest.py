"""LangChain's standard conformance suites (``langchain-tests``) run against mmrag's LangChain classes.

The suites' async tests are plain ``async def`` methods: they are marked for pytest-asyncio here, so the rest of
the test suite keeps its own settings. ``bedrock_emulator`` (the loopback Bedrock emulator) and ``postgres``
(embedded PostgreSQL with pgvector) are one per module, as in tests/integration.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator

import pytest

from mmrag.testing import BedrockEmulator
from mmrag.testing.postgres import EmbeddedPostgres


@pytest.hookimpl(tryfirst=True)
def pytest_pycollect_makeitem(collector: pytest.Collector, name: str, obj: object) -> None:
    """Mark the suites' coroutine tests for pytest-asyncio before it collects them (strict mode)."""
    if inspect.iscoroutinefunction(obj) and not any(m.name == "asyncio" for m in getattr(obj, "pytestmark", [])):
        pytest.mark.asyncio(obj)


@pytest.fixture(scope="module")
def bedrock_emulator() -> Iterator[BedrockEmulator]:
    """One emulator for the whole test module."""
    with BedrockEmulator() as emulator:
        yield emulator


@pytest.fixture(scope="module")
def postgres() -> Iterator[EmbeddedPostgres]:
    """Embedded PostgreSQL 18 with pgvector on 127.0.0.1, for the module's tests."""
    with EmbeddedPostgres() as pg:
        yield pg
