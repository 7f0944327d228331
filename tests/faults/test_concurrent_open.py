"""Several processes creating the same new sqlite files at once (manifest, index records, model cache, answer
cache): every open succeeds. SQLite fails one side of a schema-lock deadlock at once, without waiting for the busy
timeout; before the shared retrying open (mmrag/_sqlite.py) about 1 open in 60 failed here with "database is locked"
or "duplicate column name"."""

from __future__ import annotations

import multiprocessing
import traceback
from collections.abc import Callable
from multiprocessing.synchronize import Barrier
from pathlib import Path

import pytest

pytestmark = pytest.mark.faults

PROCESSES = 4
FILES = 60


def _open(kind: str, path: Path) -> None:
    if kind == "manifest":
        from mmrag.stores.manifest import Manifest

        Manifest(path).close()
    elif kind == "records":
        from mmrag.stores._faiss_db import RecordDB

        RecordDB(path, 8).close()
    elif kind == "model cache":
        from mmrag.providers.cache import ModelCache

        ModelCache(path).close()
    else:
        from mmrag._sqlite import open_sqlite

        open_sqlite(path, "CREATE TABLE IF NOT EXISTS t (k TEXT PRIMARY KEY);", "answer cache").close()


def _worker(kind: str, folder: str, barrier: Barrier, failures: multiprocessing.Queue[str]) -> None:
    for i in range(FILES):
        barrier.wait(timeout=120)  # every process opens file i at the same moment
        try:
            _open(kind, Path(folder) / f"{i}.sqlite")
        except Exception:
            failures.put(f"file {i}: {traceback.format_exc(limit=3)}")


@pytest.mark.parametrize("kind", ["manifest", "records", "model cache", "answer cache"])
def test_processes_creating_one_new_file_all_succeed(kind: str, tmp_path: Path,
                                                       record: Callable[..., None]) -> None:
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(PROCESSES)
    failures: multiprocessing.Queue[str] = context.Queue()
    workers = [context.Process(target=_worker, args=(kind, str(tmp_path), barrier, failures))
               for _ in range(PROCESSES)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=600)
    failed = []
    while not failures.empty():
        failed.append(failures.get())
    assert [w.exitcode for w in workers] == [0] * PROCESSES
    record(f"{PROCESSES} processes create {FILES} new {kind} files at once", held=PROCESSES * FILES - len(failed),
           lost=len(failed))
    assert not failed, f"{len(failed)} of {PROCESSES * FILES} opens failed; first: {failed[0]}"
