"""The conformance suite every :class:`~mmrag.stores.manifest.ManifestStore` passes.

Subclass :class:`ManifestConformance` in a test module and provide two fixtures:

- ``make_manifest``: a callable ``make_manifest() -> (manifest, spec)`` giving a fresh, empty manifest and a
  picklable ``spec`` that :func:`open_from_spec` turns into the same manifest in another process (another
  "machine");
- nothing else: reopening and the two-process tests go through ``spec``::

    class TestMyManifest(ManifestConformance):
        @pytest.fixture
        def make_manifest(self, tmp_path):
            return lambda: (SqliteManifest(tmp_path / "m.sqlite"), ("sqlite", str(tmp_path / "m.sqlite")))

Specs: ``("sqlite", path)`` or ``("postgres", dsn, collection)``.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import time
from collections.abc import Callable
from typing import Any

import pytest

from mmrag.stores.manifest import ManifestStore, Place

__all__ = ["ManifestConformance", "open_from_spec"]

Spec = tuple[str, ...]
Maker = Callable[[], tuple[ManifestStore, Spec]]


def open_from_spec(spec: Spec) -> ManifestStore:
    """Open the manifest ``spec`` describes (in this process)."""
    if spec[0] == "sqlite":
        from pathlib import Path

        from mmrag.stores.manifest import SqliteManifest

        return SqliteManifest(Path(spec[1]))
    from mmrag.stores._pg_session import PgSession
    from mmrag.stores.pg_manifest import PgManifest

    return PgManifest(PgSession(spec[1]), spec[2], create=True)


def _claim_and_commit(spec: Spec, prefix: str, n: int) -> None:
    manifest = open_from_spec(spec)
    for i in range(n):
        source = f"{prefix}-{i}"
        manifest.claim(source, [(f"{source}-a", f"key-{i % 5}"), f"{source}-b"])
        manifest.commit(source, f"fp-{i}", [(f"{source}-a", "image", f"key-{i % 5}"), (f"{source}-b", "text", None)])
    manifest.close()


def _acquire_all(spec: Spec, owner: str, sources: list[str], out: Any) -> None:
    manifest = open_from_spec(spec)
    won = [s for s in sources if manifest.acquire(s, owner, 30.0)]
    out.put((owner, won))
    manifest.close()


def _claim_then_die(spec: Spec) -> None:
    manifest = open_from_spec(spec)
    manifest.claim("crashed.pdf", [("c1", "obj-c1"), ("c2", None)])
    manifest.acquire("crashed.pdf", "dead-owner", 0.5)
    os.kill(os.getpid(), signal.SIGKILL)  # as kill -9 between the index write and the commit


def _spawn(target: Callable[..., None], *args: Any) -> multiprocessing.process.BaseProcess:
    process = multiprocessing.get_context("spawn").Process(target=target, args=args)
    process.start()
    return process


class ManifestConformance:
    """Behaviour every manifest implementation must have (see the module docstring)."""

    @pytest.fixture
    def make_manifest(self) -> Maker:  # pragma: no cover - provided by the subclass
        raise NotImplementedError

    @pytest.fixture
    def fresh(self, make_manifest: Maker) -> tuple[ManifestStore, Spec]:
        return make_manifest()

    # --- facts and commits --------------------------------------------------------------------------------

    def test_meta_round_trip(self, fresh: tuple[ManifestStore, Spec]) -> None:
        manifest, spec = fresh
        assert manifest.meta() == {}
        manifest.set_meta({"text_model": "m", "text_dimensions": 384})
        manifest.set_meta({"text_model": "m2"})
        again = open_from_spec(spec)
        assert again.meta() == {"text_model": "m2", "text_dimensions": 384}

    def test_claim_commit_and_visibility(self, fresh: tuple[ManifestStore, Spec]) -> None:
        manifest, spec = fresh
        manifest.claim("a.pdf", ["e1", ("e2", "k2")])
        assert manifest.pending_ids("a.pdf") == {"e1", "e2"}
        assert manifest.uncommitted(["e1", "e2", "e3"]) == {"e1", "e2"}
        assert manifest.uncommitted_count() == 2
        assert manifest.sources_with_pending() == ["a.pdf"]
        assert manifest.get("a.pdf") is None
        manifest.commit("a.pdf", "fp1", [("e1", "text", None), ("e2", "image", "k2")])
        other = open_from_spec(spec)  # another machine sees the commit
        entry = other.get("a.pdf")
        assert entry is not None and entry.fingerprint == "fp1" and entry.elements == 2
        assert dict(entry.kinds) == {"image": 1, "text": 1}
        assert other.pending_ids("a.pdf") == set() and other.uncommitted_count() == 0
        assert other.element_ids("a.pdf") == {"e1", "e2"}
        assert other.object_keys() == {"k2"} and other.object_keys_of("a.pdf") == {"k2"}
        assert other.totals() == {"image": 1, "text": 1}
        assert [e.source for e in other.sources()] == ["a.pdf"]

    def test_recommit_replaces_and_releases(self, fresh: tuple[ManifestStore, Spec]) -> None:
        manifest, _ = fresh
        manifest.commit("a.pdf", "fp1", [("e1", "image", "k1"), ("e2", "image", "shared")])
        manifest.commit("b.pdf", "fp1", [("e3", "image", "shared")])
        manifest.commit("a.pdf", "fp2", [("e4", "text", None)])
        assert manifest.element_ids("a.pdf") == {"e4"}
        deleted: list[str] = []
        assert manifest.release_orphans(deleted.extend) == ["k1"]
        assert deleted == ["k1"]  # "shared" is still b.pdf's
        assert manifest.release_orphans(deleted.extend) == []  # released keys are forgotten once deleted

    def test_release_keeps_claimed_and_committed_keys(self, fresh: tuple[ManifestStore, Spec]) -> None:
        manifest, _ = fresh
        manifest.claim("a.pdf", [("e1", "claimed")])
        manifest.commit("b.pdf", "fp", [("e2", "image", "committed")])
        deleted: list[str] = []
        assert manifest.release(["claimed", "committed", "free"], deleted.extend) == ["free"]
        assert deleted == ["free"]
        assert manifest.referenced_keys() == {"claimed", "committed"}

    def test_forget_and_drop_claims(self, fresh: tuple[ManifestStore, Spec]) -> None:
        manifest, _ = fresh
        manifest.commit("a.pdf", "fp", [("e1", "image", "k1")])
        manifest.claim("a.pdf", [("e2", "k2")])
        manifest.drop_claims("a.pdf", ["e2"])
        assert manifest.pending_ids("a.pdf") == set()
        manifest.forget("a.pdf")
        assert manifest.get("a.pdf") is None and manifest.element_ids("a.pdf") == set()
        deleted: list[str] = []
        assert sorted(manifest.release_orphans(deleted.extend)) == ["k1", "k2"]

    def test_places_and_holders(self, fresh: tuple[ManifestStore, Spec]) -> None:
        manifest, spec = fresh
        here = Place("img", "page.html", 0, True, 2, (1.0, 2.0, 3.0, 4.0), "a chart\x00", "image/png", "k", {"w": 3})
        there = Place("img", "img.png", 0, False, None, None, "", "image/png", "k", {})
        manifest.commit("page.html", "fp", [("img", "image", "k")], [here])
        manifest.commit("img.png", "fp", [("img", "image", "k")], [there])
        other = open_from_spec(spec)
        places = other.places(["img", "nothing"])
        assert list(places) == ["img"] and [p.source for p in places["img"]] == ["img.png", "page.html"]
        got = places["img"][1]
        assert got.bbox == (1.0, 2.0, 3.0, 4.0) and got.page == 2 and got.in_document and got.metadata == {"w": 3}
        assert set(other.places_in(["page.html"])) == {"img"}
        assert other.holders(["img", "x"]) == {"img": {"page.html", "img.png"}}
        assert other.totals(["page.html", "img.png"]) == {"image": 1}

    def test_uncommitted_by_source(self, fresh: tuple[ManifestStore, Spec]) -> None:
        manifest, _ = fresh
        manifest.commit("a.pdf", "fp", [("e1", "text", None)])
        manifest.claim("a.pdf", ["e1", "e9"])
        assert manifest.uncommitted_by_source() == {"a.pdf": {"e9"}}

    def test_atomic_block_commits_together(self, fresh: tuple[ManifestStore, Spec]) -> None:
        manifest, spec = fresh
        with manifest.atomic():
            manifest.commit("a.pdf", "fp", [("e1", "text", None)])
            manifest.commit("b.pdf", "fp", [("e2", "text", None)])
        assert {e.source for e in open_from_spec(spec).sources()} == {"a.pdf", "b.pdf"}

    # --- many writers -------------------------------------------------------------------------------------

    def test_leases(self, fresh: tuple[ManifestStore, Spec]) -> None:
        manifest, spec = fresh
        other = open_from_spec(spec)
        assert manifest.acquire("a.pdf", "me", 30.0)
        assert not other.acquire("a.pdf", "you", 30.0)
        assert manifest.acquire("a.pdf", "me", 30.0)  # renewing one's own
        assert manifest.renew("me", 30.0) == 1
        manifest.unlease("me", ["a.pdf"])
        assert other.acquire("a.pdf", "you", 30.0)
        other.commit("a.pdf", "fp", [("e", "text", None)])  # a commit drops the lease
        assert manifest.acquire("a.pdf", "me", 30.0)

    def test_expired_lease_is_taken_over(self, fresh: tuple[ManifestStore, Spec]) -> None:
        manifest, spec = fresh
        assert manifest.acquire("a.pdf", "dead", 0.3)
        other = open_from_spec(spec)
        assert not other.acquire("a.pdf", "live", 30.0)
        time.sleep(0.5)
        assert other.acquire("a.pdf", "live", 30.0)
        assert manifest.renew("dead", 30.0) == 0  # the dead owner holds nothing any more

    def test_two_processes_acquire_each_source_once(self, fresh: tuple[ManifestStore, Spec]) -> None:
        _, spec = fresh
        sources = [f"s{i}.pdf" for i in range(40)]
        queue = multiprocessing.get_context("spawn").Queue()
        processes = [_spawn(_acquire_all, spec, owner, sources, queue) for owner in ("one", "two")]
        results = dict(queue.get(timeout=120) for _ in processes)
        for process in processes:
            process.join(60)
            assert process.exitcode == 0
        assert sorted(results["one"] + results["two"]) == sorted(sources)  # each exactly once

    def test_two_processes_commit_concurrently(self, fresh: tuple[ManifestStore, Spec]) -> None:
        manifest, spec = fresh
        processes = [_spawn(_claim_and_commit, spec, prefix, 25) for prefix in ("x", "y")]
        for process in processes:
            process.join(180)
            assert process.exitcode == 0
        assert len(manifest.sources()) == 50
        assert manifest.uncommitted_count() == 0 and manifest.sources_with_pending() == []
        assert manifest.totals() == {"image": 50, "text": 50}
        assert manifest.object_keys() == {f"key-{i}" for i in range(5)}

    def test_crash_between_index_write_and_commit(self, fresh: tuple[ManifestStore, Spec]) -> None:
        manifest, spec = fresh
        process = _spawn(_claim_then_die, spec)
        process.join(120)
        assert process.exitcode == -signal.SIGKILL
        # The claim survived: its ids are hidden from searches and its key is protected from release...
        assert manifest.uncommitted(["c1", "c2"]) == {"c1", "c2"}
        assert manifest.uncommitted_by_source() == {"crashed.pdf": {"c1", "c2"}}
        assert manifest.release(["obj-c1"], lambda keys: None) == []
        # ...and once the dead run's lease expires, another run takes the source over and commits it.
        time.sleep(0.6)
        assert manifest.acquire("crashed.pdf", "taker", 30.0)
        manifest.commit("crashed.pdf", "fp", [("c1", "image", "obj-c1")])
        assert manifest.uncommitted_count() == 0
        assert manifest.element_ids("crashed.pdf") == {"c1"}
