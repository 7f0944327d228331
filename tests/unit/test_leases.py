"""The length of a source's lease is a setting (``MMRAG_LEASE_SECONDS``): the heartbeat renews for that long, a
waiting ingest takes the lease for that long, and ingest holds its sources under it."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from pydantic import ValidationError

from mmrag.chains._leases import Heartbeat, wait_for_lease
from mmrag.config import Settings
from mmrag.stores.manifest import LEASE_SECONDS, SqliteManifest


def test_the_lease_length_is_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings().lease_seconds == LEASE_SECONDS == 60.0
    monkeypatch.setenv("MMRAG_LEASE_SECONDS", "4.5")
    assert Settings().lease_seconds == 4.5
    monkeypatch.setenv("MMRAG_LEASE_SECONDS", "0")
    with pytest.raises(ValidationError, match="lease_seconds"):
        Settings()


def test_the_heartbeat_renews_for_the_lease_length_it_is_given(tmp_path: Path) -> None:
    manifest = SqliteManifest(tmp_path / "manifest.sqlite")
    try:
        assert Heartbeat(manifest, "me", seconds=1.5).every == 0.5  # a third of the lease by default
        assert manifest.acquire("a.pdf", "me", 1.0)
        with Heartbeat(manifest, "me", every=0.1, seconds=30.0):
            time.sleep(1.5)  # past the first lease: the heartbeat has renewed it for 30 s
            assert not manifest.acquire("a.pdf", "you", 30.0)
        assert manifest.acquire("a.pdf", "you", 30.0)  # given up at exit
    finally:
        manifest.close()


def test_a_waiting_ingest_takes_the_lease_for_the_length_it_is_given(tmp_path: Path) -> None:
    manifest = SqliteManifest(tmp_path / "manifest.sqlite")
    try:
        assert manifest.acquire("a.pdf", "dead", 0.3)
        wait_for_lease(manifest, "a.pdf", "taker", poll=0.05, seconds=0.5)
        assert not manifest.acquire("a.pdf", "third", 30.0)
        time.sleep(0.7)  # the taker's short lease has run out
        assert manifest.acquire("a.pdf", "third", 30.0)
    finally:
        manifest.close()
