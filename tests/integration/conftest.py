"""Fixtures shared by the integration tests: one loopback Bedrock emulator per test module.

The emulator (``mmrag.testing.BedrockEmulator``) binds 127.0.0.1 on a free port, is driven by the real boto3
client and stops when the module's tests are done. Every test gets it with a clean script, fault list and
request log, and the emulator's dummy credentials and endpoint in the environment as a user's shell would have
them (``emu``). Module-scoped fixtures that ingest once per module use ``bedrock_emulator``. ``postgres`` (embedded
PostgreSQL with pgvector) and ``s3`` (a moto S3 server) are likewise one per module.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from mmrag.testing import BedrockEmulator
from mmrag.testing.postgres import EmbeddedPostgres
from mmrag.testing.s3 import MotoS3Server


@pytest.fixture(scope="module")
def bedrock_emulator() -> Iterator[BedrockEmulator]:
    """One emulator for the whole test module."""
    with BedrockEmulator() as emulator:
        yield emulator


@pytest.fixture
def emu(bedrock_emulator: BedrockEmulator, monkeypatch: pytest.MonkeyPatch) -> Iterator[BedrockEmulator]:
    """The module's emulator with no scripts, faults or requests left from another test, its AWS variables set
    (the top-level conftest removes them for every test)."""
    bedrock_emulator.reset()
    for name, value in bedrock_emulator.environ().items():
        monkeypatch.setenv(name, value)
    yield bedrock_emulator
    bedrock_emulator.reset()


@pytest.fixture(scope="module")
def postgres() -> Iterator[EmbeddedPostgres]:
    """Embedded PostgreSQL 18 with pgvector on 127.0.0.1, for the module's tests."""
    with EmbeddedPostgres() as pg:
        yield pg


@pytest.fixture(scope="module")
def s3() -> Iterator[MotoS3Server]:
    """A moto S3 server on 127.0.0.1, for the module's tests (each test creates its own bucket)."""
    with MotoS3Server() as server:
        yield server
