"""Issue 23 item 6: a full disk. Read-only commands still answer; writing commands stop with exit 7, naming the
path and saying to free space; no message advises deleting data.

The disk is a small tmpfs filled to the last byte, mounted in a private mount namespace (``unshare -m``), so
nothing outside the test sees it. Skipped where mount namespaces are not allowed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

pytestmark = [pytest.mark.faults, pytest.mark.skipif(sys.platform != "linux", reason="mount namespaces")]

SCRIPT = r"""
set -u
full=$1; home=$2; shift 2
mount -t tmpfs -o size=32m tmpfs "$full" || exit 99
cp -a "$home/." "$full/"
find "$full" -name '*-shm' -delete  # as after a clean close: a reader must create it, which a full disk refuses
dd if=/dev/zero of="$full/filler" bs=64k 2>/dev/null
export MMRAG_HOME="$full"
i=0
for cmd in "$@"; do
  out=$(eval "$cmd" 2>&1); rc=$?
  printf '### %s rc=%s\n%s\n' "$i" "$rc" "$out"
  if [ "$i" = 1 ]; then printf '### written rc=0\n'; find "$full" -newer "$full/filler" -type f -size +0; fi
  i=$((i + 1))
done
"""


def _namespaces_allowed() -> bool:
    if shutil.which("unshare") is None:
        return False
    done = subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c",
                           "mount -t tmpfs -o size=1m tmpfs /mnt && umount /mnt"], capture_output=True)
    return done.returncode == 0


def test_full_disk(tmp_path: Path, record: Callable[..., None]) -> None:
    if not _namespaces_allowed():
        pytest.skip("needs `unshare -m` and tmpfs mounts (root, or user namespaces)")
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "gears.html").write_text("<html><head><title>Gears</title></head><body><h1>Gearboxes</h1><p>The Mazda "
                                     "RX4 has four forward gears and a rotary engine.</p></body></html>")
    (docs / "brakes.html").write_text("<html><head><title>Brakes</title></head><body><h1>Brakes</h1><p>Disc brakes "
                                      "stop the car.</p></body></html>")
    mmrag = [sys.executable, "-m", "mmrag"]
    env = {**os.environ, "MMRAG_HOME": str(tmp_path / "home"), "MMRAG_OCR": "off"}
    built = subprocess.run([*mmrag, "ingest", str(docs / "gears.html")], env=env, capture_output=True, text=True,
                           timeout=300)
    assert built.returncode == 0, built.stderr
    (tmp_path / "full").mkdir()
    cli = " ".join(mmrag)
    commands = [f"{cli} search 'rotary engine'", f"{cli} ask 'How many gears has the RX4?'",
                f"{cli} ingest {docs / 'brakes.html'}", f"{cli} remove {docs / 'gears.html'}"]
    done = subprocess.run(["unshare", "-m", "--propagation", "private", "bash", "-c", SCRIPT, "full",
                           str(tmp_path / "full"), str(tmp_path / "home"), *commands],
                          env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    runs: dict[str, tuple[int, str]] = {}
    for block in done.stdout.split("### ")[1:]:
        head, _, body = block.partition("\n")
        name, _, rc = head.partition(" rc=")
        runs[name] = (int(rc), body.strip())
    search, ask, ingest, remove = (runs[str(i)] for i in range(4))
    record("full disk: search and ask answer, nothing written", held=int(search[0] == 0) + int(ask[0] == 0),
           lost=int(search[0] != 0) + int(ask[0] != 0))
    assert search[0] == 0 and "rotary engine" in search[1], search
    assert ask[0] == 0 and "gears.html" in ask[1], ask
    # SQLite's -shm file is the shared-memory index of readers and writers (it holds no data, and on a full disk
    # stays a hole): anything else written by search or ask is a write.
    written = [p for p in runs["written"][1].splitlines() if not p.endswith("-shm")]
    assert written == [], f"read-only commands wrote {written}"
    for rc, text in (ingest, remove):
        assert rc == 7, text
        [line] = [x for x in text.splitlines() if x.startswith("error:")]
        assert "no space left" in line and str(tmp_path / "full") in line and "free space" in line, line
        assert "delete" not in text.lower() and "Traceback" not in text, text
