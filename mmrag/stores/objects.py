"""Object stores for raw objects (images, page renders, table CSV/markdown): the contract and a local folder.

An object store is a LangChain ``BaseStore[str, bytes]`` plus three conveniences that ingest and citations need:
:meth:`ObjectStore.put` (store bytes under their content-addressed key), :meth:`ObjectStore.uri` (a link a user
can open) and :meth:`ObjectStore.exists`. Keys come from :func:`object_key`, so re-ingesting a document writes
nothing new and the same image in two documents is stored once::

    store = LocalObjectStore(Path(".mmrag/objects"))
    key = store.put(png_bytes, "image/png")      # 'sha256/3f/3fa9....png'
    store.mget([key]) == [png_bytes]
    store.uri(key)                               # 'file:///abs/.mmrag/objects/sha256/3f/3fa9....png'

:class:`~mmrag.stores.s3.S3ObjectStore` keeps the same keys in an S3 bucket.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import re
import secrets
from abc import abstractmethod
from collections.abc import Iterator, Sequence
from pathlib import Path
from urllib.parse import quote_from_bytes

from langchain_core.stores import BaseStore

from mmrag.errors import StoreError

__all__ = [
    "LocalObjectStore",
    "ObjectStore",
    "mime_type_for_key",
    "object_key",
    "validate_key",
]

logger = logging.getLogger(__name__)

# A fixed table, not ``mimetypes``: that module reads the OS's mime.types, and a key must be the same on every
# machine or content addressing stops deduplicating across them.
_EXTENSIONS: dict[str, str] = {
    "image/png": ".png",
    "image/jpeg": ".jpg",
    "image/jpg": ".jpg",
    "image/gif": ".gif",
    "image/webp": ".webp",
    "image/tiff": ".tif",
    "image/bmp": ".bmp",
    "image/svg+xml": ".svg",
    "image/avif": ".avif",
    "image/heic": ".heic",
    "image/x-icon": ".ico",
    "image/vnd.microsoft.icon": ".ico",
    "text/csv": ".csv",
    "text/markdown": ".md",
    "text/plain": ".txt",
    "text/html": ".html",
    "application/json": ".json",
    "application/pdf": ".pdf",
}
_MIME_TYPES: dict[str, str] = {
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".gif": "image/gif",
    ".webp": "image/webp",
    ".tif": "image/tiff",
    ".bmp": "image/bmp",
    ".svg": "image/svg+xml",
    ".avif": "image/avif",
    ".heic": "image/heic",
    ".ico": "image/vnd.microsoft.icon",
    ".csv": "text/csv",
    ".md": "text/markdown",
    ".txt": "text/plain",
    ".html": "text/html",
    ".json": "application/json",
    ".pdf": "application/pdf",
}
_MAX_KEY_BYTES = 1024  # S3's limit; a local key this long would also hit most file systems' path limits
# Temp files of atomic writes live next to their object; keys may not use this prefix, listings skip it.
_TEMP_PREFIX = ".mmrag-tmp-"


def object_key(data: bytes, mime_type: str | None) -> str:
    """The content-addressed key of ``data``: ``sha256/<first 2 hex>/<sha256 hex><extension>``.

    The two-character folder keeps any one directory small (256 fan-out) on local disks.

    Args:
        data: the raw object.
        mime_type: its type (``image/png``, ``text/csv; charset=utf-8``); parameters and case are ignored.
            Unknown or ``None`` gives ``.bin``.

    Returns:
        A key such as ``sha256/ab/ab12...ef.png``.
    """
    digest = hashlib.sha256(data).hexdigest()
    return f"sha256/{digest[:2]}/{digest}{extension_for(mime_type)}"


def extension_for(mime_type: str | None) -> str:
    """The file extension (with the dot) that :func:`object_key` uses for ``mime_type``; ``.bin`` if unknown."""
    if not mime_type:
        return ".bin"
    return _EXTENSIONS.get(mime_type.split(";", 1)[0].strip().lower(), ".bin")


def mime_type_for_key(key: str) -> str:
    """The content type of an object from its key's extension; ``application/octet-stream`` if unknown."""
    name = key.rsplit("/", 1)[-1]
    dot = name.rfind(".")
    ext = name[dot:].lower() if dot > 0 else ""
    return _MIME_TYPES.get(ext, "application/octet-stream")


def validate_key(key: str) -> str:
    """Check that ``key`` is a safe relative, ``/``-separated key and return it.

    Refused: empty keys, keys longer than 1024 UTF-8 bytes, absolute keys (leading ``/``), backslashes, control
    characters, empty segments (``a//b``, trailing ``/``) and ``.`` or ``..`` segments.

    Raises:
        StoreError: the key is not acceptable.
    """
    problem = _key_problem(key)
    if problem:
        raise StoreError(f"invalid object key {key!r}: {problem}; use keys from mmrag.stores.objects.object_key()")
    return key


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _key_problem(key: object) -> str | None:
    if not isinstance(key, str):
        return f"keys are str, not {type(key).__name__}"
    if not key:
        return "empty"
    if len(key.encode("utf-8", "surrogatepass")) > _MAX_KEY_BYTES:
        return f"longer than {_MAX_KEY_BYTES} bytes"
    if key.startswith("/"):
        return "absolute keys are not allowed"
    if "\\" in key:
        return "backslashes are not allowed"
    if _CONTROL.search(key):  # a compiled class, not a loop per character: this runs for every hit's link
        return "control characters are not allowed"
    for segment in key.split("/"):
        if not segment:
            return "empty path segments are not allowed"
        if segment in (".", ".."):
            return f"{segment!r} segments are not allowed"
    return None


class ObjectStore(BaseStore[str, bytes]):
    """A ``BaseStore[str, bytes]`` for raw objects, with content-addressed :meth:`put` and openable :meth:`uri`.

    Subclasses implement the four ``BaseStore`` methods plus :meth:`uri` and :meth:`exists`; ``amget``, ``amset``,
    ``amdelete`` and ``ayield_keys`` come from ``BaseStore`` (run in a thread).
    """

    @abstractmethod
    def uri(self, key: str) -> str:
        """A link to the object that a user (or a browser) can open. The object is not checked to exist."""

    @abstractmethod
    def exists(self, keys: Sequence[str]) -> list[bool]:
        """Whether each key holds an object, in the order given."""

    def put(self, data: bytes, mime_type: str | None) -> str:
        """Store ``data`` under its :func:`object_key` unless it is already there, and return the key."""
        return self.put_many([(data, mime_type)])[0]

    def put_many(self, items: Sequence[tuple[bytes, str | None]]) -> list[str]:
        """Store each ``(data, mime_type)`` under its :func:`object_key`, skipping objects already stored.

        Returns:
            The keys, in the order of ``items``.
        """
        keys = [object_key(data, mime) for data, mime in items]
        todo = dict(zip(keys, (data for data, _ in items), strict=True))
        present = self.exists(list(todo))
        self.mset([(k, v) for (k, v), there in zip(todo.items(), present, strict=True) if not there])
        return keys


class LocalObjectStore(ObjectStore):
    """Objects as files under a folder; the folder is created on the first write.

    Writes are atomic (temp file in the same folder, fsync, ``os.replace``), so a crash leaves either the old
    object or the new one, never half of one. Keys are checked (:func:`validate_key`) and must resolve inside the
    root, so neither ``../x`` nor a symlink inside the root can reach files outside it.

    Args:
        root: the folder that holds the objects, e.g. ``MMRAG_HOME/objects``.
        fsync: flush each object (and its folder) to disk before returning; turn off only for throwaway data.
    """

    def __init__(self, root: Path | str, *, fsync: bool = True) -> None:
        self.root = Path(root).expanduser().resolve()
        self.fsync = fsync
        self._root_uri: str | None = None

    def __repr__(self) -> str:
        return f"LocalObjectStore({str(self.root)!r})"

    def _check(self, key: str) -> None:
        problem = _key_problem(key)
        if problem is None and ":" in key:
            problem = "':' is not allowed in local keys (drive letters, alternate data streams)"
        if problem is None and any(seg.startswith(_TEMP_PREFIX) for seg in key.split("/")):
            problem = f"segments starting with {_TEMP_PREFIX!r} are reserved for temp files"
        if problem:
            raise StoreError(f"invalid object key {key!r}: {problem}; use keys from mmrag.stores.objects.object_key()")

    def _path(self, key: str) -> Path:
        self._check(key)
        path = self.root.joinpath(*key.split("/"))
        # Resolving follows symlinks; a key whose real location leaves the root is refused outright.
        if not path.resolve().is_relative_to(self.root):
            raise StoreError(f"object key {key!r} resolves outside {self.root} (a symlink?): refusing to follow it")
        return path

    def mget(self, keys: Sequence[str]) -> list[bytes | None]:
        """The objects under ``keys``; ``None`` where there is none."""
        out: list[bytes | None] = []
        for key in keys:
            path = self._path(key)
            try:
                out.append(path.read_bytes())
            except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
                out.append(None)
            except OSError as e:
                raise StoreError(f"cannot read object {key!r} at {path}: {e.strerror or e}") from e
        return out

    def mset(self, key_value_pairs: Sequence[tuple[str, bytes]]) -> None:
        """Write each object atomically, replacing what the key held."""
        paths = [(self._path(key), value) for key, value in key_value_pairs]  # all keys checked before any write
        folders: set[Path] = set()
        for path, value in paths:
            self._write(path, value)
            folders.add(path.parent)
        if self.fsync and os.name == "posix":
            # The rename is durable only once its folder is flushed; once per folder per batch is enough.
            for folder in folders:
                _fsync_dir(folder)

    def _write(self, path: Path, value: bytes) -> None:
        if not isinstance(value, bytes | bytearray | memoryview):
            raise StoreError(f"objects are bytes, not {type(value).__name__} (key {path.name!r})")
        tmp = path.parent / f"{_TEMP_PREFIX}{secrets.token_hex(8)}"
        # Not mkstemp: its 0600 mode would outlive the rename; 0666 minus the umask is what users expect.
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
        try:
            try:
                fd = os.open(tmp, flags, 0o666)
            except FileNotFoundError:  # first object in this folder; usually it exists, so no mkdir per write
                path.parent.mkdir(parents=True, exist_ok=True)
                fd = os.open(tmp, flags, 0o666)
        except OSError as e:
            raise StoreError(f"cannot write objects under {path.parent}: {e.strerror or e}") from e
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(value)
                f.flush()
                if self.fsync:
                    os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException as e:
            # Whatever failed (disk full, interrupt), leave no temp file behind and the old object untouched.
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            if isinstance(e, OSError):
                raise StoreError(f"cannot write object {path}: {e.strerror or e}") from e
            raise

    def mdelete(self, keys: Sequence[str]) -> None:
        """Delete the objects under ``keys``; missing keys are ignored."""
        for key in keys:
            path = self._path(key)
            try:
                path.unlink()
            except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
                pass
            except OSError as e:
                raise StoreError(f"cannot delete object {key!r} at {path}: {e.strerror or e}") from e

    def yield_keys(self, *, prefix: str | None = None) -> Iterator[str]:
        """Every stored key (sorted within each folder), or those starting with ``prefix``.

        Symlinks and in-flight temp files are not objects and are skipped.
        """
        prefix = prefix or ""
        # Start from the deepest folder the prefix names, so ``sha256/ab/`` reads one folder, not the tree.
        start, _, _ = prefix.rpartition("/")
        if start and _key_problem(start) is not None:
            return
        top = self.root.joinpath(*start.split("/")) if start else self.root
        if not top.is_dir() or not top.resolve().is_relative_to(self.root):
            return
        for key in _walk(top, f"{start}/" if start else ""):
            if key.startswith(prefix):
                yield key

    def uri(self, key: str) -> str:
        """An absolute ``file://`` URI of the object (the key is checked; the file is neither read nor resolved).

        Built as a string, as :meth:`pathlib.Path.as_uri` would (this runs for every hit of every search).
        """
        self._check(key)
        if self._root_uri is None:
            self._root_uri = self.root.as_uri().rstrip("/")
        return f"{self._root_uri}/{quote_from_bytes(os.fsencode(key))}"

    def exists(self, keys: Sequence[str]) -> list[bool]:
        """Whether each key holds an object (a regular file)."""
        return [self._path(key).is_file() for key in keys]


def _walk(folder: Path, rel: str) -> Iterator[str]:
    try:
        with os.scandir(folder) as it:
            entries = sorted(it, key=lambda e: e.name)
    except (FileNotFoundError, NotADirectoryError):
        return  # deleted while listing
    except OSError as e:
        raise StoreError(f"cannot list objects in {folder}: {e.strerror or e}") from e
    for entry in entries:
        if entry.name.startswith(_TEMP_PREFIX) or entry.is_symlink():
            continue
        if entry.is_dir(follow_symlinks=False):
            yield from _walk(Path(entry.path), f"{rel}{entry.name}/")
        elif entry.is_file(follow_symlinks=False):
            yield f"{rel}{entry.name}"


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return  # some file systems refuse to open folders; the data itself is already flushed
    try:
        os.fsync(fd)
    except OSError:
        logger.debug("fsync of folder %s not supported", folder)
    finally:
        os.close(fd)
