"""A notebook's "interrupt the kernel" stops an ingest: a real IPython kernel (jupyter_client) ingests tests/data,
gets an interrupt about a second in, and is idle again soon after, with KeyboardInterrupt raised and a collection
in which every search result is committed (issue 25, item 2).

The bound asserted here is generous (a loaded 2-core CI machine): the time measured is written to the test's
``record`` property and printed; the goal is 2 s.
"""

from __future__ import annotations

import json
import os
import queue
import sys
import textwrap
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.integration

jupyter_client = pytest.importorskip("jupyter_client")
pytest.importorskip("ipykernel")

BOUND_S = 10.0
"""Generous: the goal is 2 s; what was measured is reported, never asserted tighter."""
START_TIMEOUT_S = 300.0


def _spec_dir(root: Path) -> Path:
    """A kernel spec running this interpreter (not whatever ``python3`` spec another venv installed)."""
    folder = root / "kernels" / "mmrag-test"
    folder.mkdir(parents=True)
    spec = {"argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
            "display_name": "mmrag test", "language": "python", "interrupt_mode": "signal"}
    (folder / "kernel.json").write_text(json.dumps(spec), encoding="utf-8")
    return root / "kernels"


@pytest.fixture
def kernel(tmp_path: Path) -> Iterator[Any]:
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import KernelManager

    specs = KernelSpecManager(kernel_dirs=[str(_spec_dir(tmp_path))])
    manager = KernelManager(kernel_name="mmrag-test", kernel_spec_manager=specs)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "MMRAG_"))}
    env.update(MMRAG_HOME=str(tmp_path / "home"), MMRAG_PROFILE="local", PYTHONUNBUFFERED="1")
    manager.start_kernel(env=env, cwd=str(tmp_path))
    client = manager.client()
    client.start_channels()
    try:
        client.wait_for_ready(timeout=START_TIMEOUT_S)
        yield manager, client
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)


def _until(client: Any, msg_id: str, want: Any, timeout: float) -> dict[str, Any]:
    """The first iopub message of request ``msg_id`` for which ``want(msg)`` is true."""
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"no such message within {timeout:.0f} s")
        try:
            msg = client.get_iopub_msg(timeout=left)
        except queue.Empty:
            continue
        if msg["parent_header"].get("msg_id") == msg_id and want(msg):
            return msg  # type: ignore[no-any-return]


def _stream(text: str) -> Any:
    return lambda m: m["msg_type"] == "stream" and text in m["content"]["text"]


def _idle(m: dict[str, Any]) -> bool:
    return m["msg_type"] == "status" and m["content"]["execution_state"] == "idle"


INGEST = textwrap.dedent("""
    import sys
    from mmrag.chains import ingest

    seen = []

    def progress(stage, n, total):
        if not seen and stage == "planned":  # a source parsed: the models and the next sources are under way
            seen.append(stage)
            print("working", flush=True)

    ingest([{data!r}], progress=progress)
    print("finished", flush=True)
""")

CHECK = textwrap.dedent("""
    import json
    from mmrag.chains import open_components
    from mmrag.config import Settings

    _, col = open_components(Settings(), create=False)
    committed = {{i for s in col.manifest.sources() for i in col.manifest.element_ids(s.source)}}
    text = {{h.id for h in col.text.search([1.0] * col.text.dimensions, k=100_000)}}
    image = {{h.id for h in col.image.search([1.0] * col.image.dimensions, k=100_000)}}
    print(json.dumps({{"committed": len(committed), "sources": len(list(col.manifest.sources())),
                      "uncommitted_visible": len((text | image) - committed)}}), flush=True)
""")


def test_interrupting_the_kernel_stops_an_ingest(kernel: Any, data_dir: Path,
                                                 record_property: Any) -> None:
    manager, client = kernel
    msg_id = client.execute(INGEST.format(data=str(data_dir)))
    _until(client, msg_id, _stream("working"), START_TIMEOUT_S)
    time.sleep(1.0)
    manager.interrupt_kernel()
    interrupted = time.monotonic()
    idle = _until(client, msg_id, _idle, 120.0)
    took = time.monotonic() - interrupted
    reply = client.get_shell_msg(timeout=30)
    while reply["parent_header"].get("msg_id") != msg_id:  # e.g. a late kernel_info reply from wait_for_ready
        reply = client.get_shell_msg(timeout=30)
    assert idle
    record_property("interrupt_to_idle_s", round(took, 2))
    print(f"kernel idle {took:.2f} s after the interrupt (goal 2 s)")
    assert reply["content"]["status"] == "error", "the ingest ran to the end: the interrupt came too late to test"
    assert reply["content"]["ename"] == "KeyboardInterrupt"
    assert "ingest stopped" in reply["content"]["evalue"], reply["content"]["evalue"]
    assert took < BOUND_S

    check = client.execute(CHECK.format())
    out = _until(client, check, _stream("committed"), 120.0)
    state = json.loads(out["content"]["text"].strip().splitlines()[-1])
    assert state["uncommitted_visible"] == 0, state


def test_cancelling_aingest_stops_its_thread(data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``aingest`` runs ``ingest`` in a worker thread: cancelling the awaiting task stops that thread too (it used to
    run to the end, committing, after the caller had moved on). ipykernel delivers a notebook's interrupt of an
    awaiting cell only once the awaited work ends (ipython/ipykernel#881), so this is what makes it prompt there."""
    import asyncio
    import threading

    from mmrag.chains import aingest, open_components
    from mmrag.config import Settings

    monkeypatch.setenv("MMRAG_PROFILE", "local")
    working = threading.Event()

    def progress(stage: str, n: int, total: int | None) -> None:
        if stage == "planned":
            working.set()

    async def run() -> None:
        task = asyncio.ensure_future(aingest([str(data_dir)], progress=progress))
        while not working.is_set():
            assert not task.done(), "the ingest ended before it could be cancelled"
            await asyncio.sleep(0.05)
        await asyncio.sleep(1.0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    def ingesting() -> bool:  # the executor's thread lives until the ingest it runs returns
        return any(t.name.startswith("aingest-test") for t in threading.enumerate())

    loop = asyncio.new_event_loop()
    executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="aingest-test")
    loop.set_default_executor(executor)
    try:
        loop.run_until_complete(run())
        cancelled = time.monotonic()
        executor.shutdown(wait=False)
        while ingesting() and time.monotonic() - cancelled < BOUND_S:
            time.sleep(0.05)
        took = time.monotonic() - cancelled
        print(f"aingest's thread ended {took:.2f} s after the cancel (goal 2 s)")
        assert not ingesting(), f"the ingest thread still runs {BOUND_S:.0f} s after its task was cancelled"
    finally:
        executor.shutdown(wait=True)
        loop.close()
    _, col = open_components(Settings(), create=False)
    committed = {i for s in col.manifest.sources() for i in col.manifest.element_ids(s.source)}
    visible = {h.id for h in col.text.search([1.0] * col.text.dimensions, k=100_000)}
    assert visible <= committed
    assert len(list(col.manifest.sources())) < len(list(data_dir.rglob("*.*"))), "the ingest was not stopped"
