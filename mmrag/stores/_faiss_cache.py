"""The cache file of a :class:`~mmrag.stores.faiss.FaissIndex`'s FAISS index, opened without reading it whole.

Layout: a magic line, a 4-byte header length, a JSON header (padded with spaces so the body starts on a 64-byte
boundary), then the body: the row ids (little-endian int64) and ``faiss.write_index``'s bytes, whose vectors
come last. The header holds the database uid and version, the kind, dimensions, row count, the body's length and
its CRC-32.

A reader maps the file into memory and hands FAISS the mapped bytes (``ZeroCopyIOReader`` with
``IO_FLAG_MMAP_IFC``): the vectors and the HNSW graph stay in the file's pages, read from disk as searches touch
them and shared between processes, so opening a collection of a million 384-dim vectors (1.7 GB of cache)
costs milliseconds, not seconds, and no second copy of the vectors is made. The cheap checks run at once (magic,
header, database, dimensions, exact body length, row ids in order, FAISS's own structure checks); the CRC of a
body larger than :data:`VERIFY_NOW_BYTES` is computed on a background thread that reads the file with ``pread``
(through the page cache, not the mapping: it does not grow the process), and a mismatch is reported to the
caller, which drops the index and rebuilds it from the database. Smaller bodies are checked before use.

Writes go to a temporary file, fsynced, then ``os.replace``: a reader's mapping keeps the file it opened.
"""

from __future__ import annotations

import json
import logging
import mmap
import os
import threading
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from mmrag.stores._faiss_ann import Ann

__all__ = ["VERIFY_NOW_BYTES", "read_cache", "write_cache"]

logger = logging.getLogger(__name__)

_MAGIC = b"MMRAGFAISS\x02\n"
_ALIGN = 64
_CHUNK = 16 << 20  # bytes per read of the background check
VERIFY_NOW_BYTES = 64 << 20
"""Bodies up to this size are CRC-checked before use (a few ms); larger ones on a background thread."""


def _faiss() -> Any:
    import faiss

    return faiss


def _header_bytes(header: dict[str, Any]) -> bytes:
    raw = json.dumps(header).encode()
    used = len(_MAGIC) + 4 + len(raw)
    return raw + b" " * (-used % _ALIGN)


def write_cache(path: Path, uid: str, ann: Ann) -> None:
    """Write ``ann`` to ``path`` atomically (temporary file + ``os.replace``). Failures are logged, not raised.

    The FAISS bytes are streamed to the file as FAISS produces them (no in-memory copy of a large index); the
    header, whose CRC and length are known only at the end, is written last into space reserved for it.
    """
    faiss = _faiss()

    _remove_orphans(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    n = len(ann.rowids)
    base = {"uid": uid, "version": ann.version, "kind": ann.kind, "dims": int(ann.index.d), "n": n,
            "dead": 0 if ann.alive_known and not ann.n_dead else -1}  # tombstones are not saved
    # Room for the final header: the same keys with the widest values they can take.
    reserved = len(_header_bytes({**base, "dead": -1, "bytes": 2**63, "crc": 2**32})) + _ALIGN
    try:
        with open(tmp, "wb") as f:
            f.write(b"\0" * (len(_MAGIC) + 4 + reserved))
            rowids = ann.rowids.astype("<i8").data
            state = {"crc": zlib.crc32(rowids), "bytes": rowids.nbytes}
            f.write(rowids)

            def sink(chunk: bytes) -> int:
                f.write(chunk)
                state["crc"] = zlib.crc32(chunk, state["crc"])
                state["bytes"] += len(chunk)
                return len(chunk)

            writer = faiss.PyCallbackIOWriter(sink)
            faiss.write_index(ann.index, writer)
            del writer  # flushes its buffer into sink
            header = json.dumps({**base, "bytes": state["bytes"], "crc": state["crc"]}).encode()
            header += b" " * (reserved - len(header))
            f.seek(0)
            f.write(_MAGIC + len(header).to_bytes(4, "little") + header)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except (OSError, RuntimeError) as e:  # the cache only saves time: a failed write costs a rebuild later
        logger.warning("could not write the FAISS cache %s: %s", path, e)
        tmp.unlink(missing_ok=True)


def read_cache(path: Path, uid: str, dims: int, on_damage: Callable[[Ann], None] | None = None) -> Ann | None:
    """The cached index if ``path`` passes the checks (database, dimensions, sizes, CRC), else None.

    Args:
        path: the cache file.
        uid: the database's uid (a cache of another database is not ours).
        dims: the index's dimensions.
        on_damage: called (from a background thread) with the returned index if its CRC, checked after the
            return for a large body, does not match; None checks every body before returning.
    """
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return None
    except OSError as e:
        logger.warning("cannot read the FAISS cache %s (%s): rebuilding it from the database", path, e)
        return None
    try:
        ann, crc, start, size = _open(fd, uid, dims)
        if ann is None:
            return None
        if on_damage is None or size <= VERIFY_NOW_BYTES:
            if _crc(fd, start, size) != crc:
                raise ValueError("checksum mismatch")
        else:
            check = threading.Thread(target=_verify, args=(fd, start, size, crc, path, ann, on_damage),
                                     name="mmrag-faiss-verify", daemon=True)
            check.start()
            fd = -1  # the thread closes it
        return ann
    except (OSError, ValueError, RuntimeError, KeyError, TypeError, OverflowError) as e:
        logger.warning("ignoring the FAISS cache %s (%s): rebuilding it from the database", path, e)
        return None
    finally:
        if fd >= 0:
            os.close(fd)


def _open(fd: int, uid: str, dims: int) -> tuple[Ann | None, int, int, int]:
    """(the index on a map of ``fd``, or None if the cache is not this database's; CRC, start and length of the
    body). Raises ValueError (and FAISS's RuntimeError) for a damaged file."""
    faiss = _faiss()

    head = os.pread(fd, len(_MAGIC) + 4, 0)
    if head[: len(_MAGIC)] != _MAGIC:
        raise ValueError("not an mmrag FAISS cache of this version")
    start = len(_MAGIC) + 4 + int.from_bytes(head[len(_MAGIC) :], "little")
    header = json.loads(os.pread(fd, start - len(head), len(head)))
    if header["uid"] != uid or header["dims"] != dims or header["kind"] not in ("flat", "hnsw"):
        return None, 0, 0, 0  # another database's cache (the folder was reset): simply not ours
    n, size = int(header["n"]), int(header["bytes"])
    if os.fstat(fd).st_size != start + size or size < 8 * n:
        raise ValueError("the file is not as long as its header says")
    rowids = np.frombuffer(os.pread(fd, 8 * n, start), dtype="<i8").astype(np.int64)
    if len(rowids) != n or (n and (rowids[0] <= 0 or np.any(np.diff(rowids) <= 0))):
        raise ValueError("row ids out of order")
    mapped = mmap.mmap(fd, 0, access=mmap.ACCESS_READ)
    body = np.frombuffer(mapped, dtype=np.uint8)[start + 8 * n :]
    index = faiss.read_index(faiss.ZeroCopyIOReader(faiss.swig_ptr(body), body.size),
                             faiss.IO_FLAG_MMAP_IFC | faiss.IO_FLAG_READ_ONLY)
    expected = faiss.IndexHNSWFlat if header["kind"] == "hnsw" else faiss.IndexFlatIP
    if not isinstance(index, expected) or index.ntotal != n or index.d != dims:
        raise ValueError("index does not match its header")
    ann = Ann(header["kind"], index, rowids, int(header["version"]), mapping=(mapped, body))
    ann.alive_known = header.get("dead") == 0
    return ann, int(header["crc"]), start, size


def _crc(fd: int, start: int, size: int) -> int:
    crc, offset, end = 0, start, start + size
    while offset < end:
        chunk = os.pread(fd, min(_CHUNK, end - offset), offset)
        if not chunk:
            raise ValueError("the file ended early")
        crc = zlib.crc32(chunk, crc)  # releases the GIL on large buffers
        offset += len(chunk)
    return crc


def _verify(fd: int, start: int, size: int, crc: int, path: Path, ann: Ann, on_damage: Callable[[Ann], None]) -> None:
    try:
        ok = _crc(fd, start, size) == crc
    except (OSError, ValueError) as e:
        logger.warning("cannot check the FAISS cache %s (%s)", path, e)
        ok = False
    finally:
        os.close(fd)
    if not ok:
        logger.warning("the FAISS cache %s fails its checksum: rebuilding it from the database", path)
        on_damage(ann)


def _remove_orphans(path: Path) -> None:
    """Delete temporary cache files left by processes that died mid-write."""
    for tmp in path.parent.glob(f".{path.name}.*.tmp"):
        try:
            pid = int(tmp.name.split(".")[-3])
        except ValueError:
            continue
        if pid != os.getpid() and not _alive(pid):
            tmp.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
