from __future__ import annotations

import asyncio
import hashlib
import os
import re
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from langchain_core.stores import BaseStore

from mmrag.errors import StoreError
from mmrag.stores.objects import LocalObjectStore, ObjectStore, mime_type_for_key, object_key, validate_key

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4


def _files(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file() or p.is_symlink())


@pytest.fixture
def store(tmp_path: Path) -> LocalObjectStore:
    return LocalObjectStore(tmp_path / "objects")


# -- keys ---------------------------------------------------------------------------------------------------------


def test_object_key_is_sha256_with_a_fan_out_folder_and_extension() -> None:
    digest = hashlib.sha256(PNG).hexdigest()
    assert object_key(PNG, "image/png") == f"sha256/{digest[:2]}/{digest}.png"
    assert re.fullmatch(r"sha256/[0-9a-f]{2}/[0-9a-f]{64}\.csv", object_key(b"a,b\n", "text/csv"))


@pytest.mark.parametrize(
    ("mime", "ext"),
    [
        ("image/jpeg", ".jpg"),
        ("IMAGE/PNG", ".png"),
        ("text/csv; charset=utf-8", ".csv"),
        ("text/markdown", ".md"),
        ("image/svg+xml", ".svg"),
        ("application/x-unknown", ".bin"),
        ("", ".bin"),
        (None, ".bin"),
    ],
)
def test_extension_follows_the_mime_type(mime: str | None, ext: str) -> None:
    assert object_key(b"x", mime).endswith(ext)


def test_mime_type_for_key_inverts_the_extension() -> None:
    assert mime_type_for_key(object_key(PNG, "image/png")) == "image/png"
    assert mime_type_for_key(object_key(b"x", "image/jpeg")) == "image/jpeg"
    assert mime_type_for_key(object_key(b"x", "text/markdown")) == "text/markdown"
    assert mime_type_for_key(object_key(b"x", None)) == "application/octet-stream"
    assert mime_type_for_key("a.b/noext") == "application/octet-stream"
    assert mime_type_for_key("dir/.png") == "application/octet-stream"  # a dot file has no extension


# -- round trips --------------------------------------------------------------------------------------------------


def test_is_a_langchain_base_store(store: LocalObjectStore) -> None:
    assert isinstance(store, BaseStore) and isinstance(store, ObjectStore)


def test_round_trip_missing_keys_and_delete(store: LocalObjectStore) -> None:
    store.mset([("a/one.bin", b"1"), ("a/two.bin", b""), ("b.txt", b"three")])
    assert store.mget(["a/two.bin", "missing.bin", "a/one.bin", "b.txt", "a"]) == [b"", None, b"1", b"three", None]
    assert store.exists(["a/one.bin", "a/nope.bin", "a"]) == [True, False, False]

    store.mset([("a/one.bin", b"replaced")])
    assert store.mget(["a/one.bin"]) == [b"replaced"]

    store.mdelete(["a/one.bin", "never/was.bin", "b.txt/below"])  # missing keys are fine
    assert store.mget(["a/one.bin", "b.txt"]) == [None, b"three"]
    assert _files(store.root) == ["a/two.bin", "b.txt"]


def test_the_root_is_created_on_first_write_not_before(tmp_path: Path) -> None:
    store = LocalObjectStore(tmp_path / "deep" / "objects")
    assert not (tmp_path / "deep").exists()
    assert store.mget(["x.bin"]) == [None]
    assert list(store.yield_keys()) == []
    store.mset([("x.bin", b"x")])
    assert (tmp_path / "deep" / "objects" / "x.bin").read_bytes() == b"x"


def test_put_is_content_addressed_and_stores_each_object_once(store: LocalObjectStore) -> None:
    k1 = store.put(PNG, "image/png")
    k2 = store.put(PNG, "image/png")  # the same image from a second document
    assert k1 == k2 == object_key(PNG, "image/png")
    assert store.put(PNG, "image/jpeg") != k1  # another type is another object
    keys = store.put_many([(b"a,b\n", "text/csv"), (PNG, "image/png"), (b"a,b\n", "text/csv")])
    assert keys[0] == keys[2] and keys[1] == k1
    assert _files(store.root) == sorted([k1, keys[0], object_key(PNG, "image/jpeg")])
    assert store.mget([k1]) == [PNG]


def test_put_does_not_rewrite_an_existing_object(store: LocalObjectStore, monkeypatch: pytest.MonkeyPatch) -> None:
    key = store.put(PNG, "image/png")

    def no_writes(*args: object) -> None:
        raise AssertionError("put rewrote an object that was already stored")

    monkeypatch.setattr(os, "replace", no_writes)
    assert store.put(PNG, "image/png") == key
    assert store.put_many([(PNG, "image/png")]) == [key]


def test_new_objects_get_normal_permissions(store: LocalObjectStore) -> None:
    old = os.umask(0o022)
    try:
        key = store.put(PNG, "image/png")
    finally:
        os.umask(old)
    assert (store.root / key).stat().st_mode & 0o777 == 0o644


# -- atomic writes ------------------------------------------------------------------------------------------------


def test_a_failed_write_leaves_the_old_object_and_no_temp_file(
    store: LocalObjectStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    store.mset([("doc/page.png", b"old bytes")])

    def disk_full(src: object, dst: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", disk_full)
    with pytest.raises(StoreError, match="No space left on device"):
        store.mset([("doc/page.png", b"new bytes that never land")])
    monkeypatch.undo()

    assert store.mget(["doc/page.png"]) == [b"old bytes"]
    assert _files(store.root) == ["doc/page.png"]


def test_an_interrupted_write_cleans_up_and_reraises(store: LocalObjectStore, monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupted(fd: int) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "fsync", interrupted)
    with pytest.raises(KeyboardInterrupt):
        store.mset([("a/new.bin", b"half")])
    monkeypatch.undo()

    assert store.mget(["a/new.bin"]) == [None]
    assert _files(store.root) == []


def test_one_bad_key_in_a_batch_writes_nothing(store: LocalObjectStore) -> None:
    with pytest.raises(StoreError):
        store.mset([("good.bin", b"1"), ("../bad.bin", b"2")])
    assert not store.root.exists() or _files(store.root) == []


def test_values_must_be_bytes(store: LocalObjectStore) -> None:
    with pytest.raises(StoreError, match="bytes, not str"):
        store.mset([("a.txt", "text")])  # type: ignore[list-item]


# -- key safety ---------------------------------------------------------------------------------------------------

BAD_KEYS = [
    "../x",
    "/etc/passwd",
    "a/../../x",
    "a\\..\\x",
    "a/./b",
    "..",
    "",
    "a//b",
    "a/",
    "C:/Windows/win.ini",
    "a\x00b",
    "line\nbreak",
    ".mmrag-tmp-0123",
    "x" * 1025,
]


@pytest.mark.parametrize("key", BAD_KEYS)
def test_unsafe_keys_are_refused_by_every_operation(store: LocalObjectStore, key: str) -> None:
    for call in (
        lambda: store.mget([key]),
        lambda: store.mset([(key, b"x")]),
        lambda: store.mdelete([key]),
        lambda: store.exists([key]),
        lambda: store.uri(key),
    ):
        with pytest.raises(StoreError, match="invalid object key"):
            call()
    assert not store.root.exists()


def test_validate_key_shared_rules() -> None:
    assert validate_key("sha256/ab/abc.png") == "sha256/ab/abc.png"
    for key in ("../x", "/abs", "a\\b", "a//b", "a/./b"):
        with pytest.raises(StoreError):
            validate_key(key)


def test_symlinks_out_of_the_root_are_refused(store: LocalObjectStore, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_bytes(b"secret")
    store.mset([("inside.txt", b"ok")])
    (store.root / "dir").symlink_to(outside, target_is_directory=True)
    (store.root / "file.txt").symlink_to(outside / "secret.txt")

    for key in ("dir/secret.txt", "file.txt", "dir/new.txt"):
        with pytest.raises(StoreError, match="outside"):
            store.mget([key])
        with pytest.raises(StoreError, match="outside"):
            store.mset([(key, b"overwrite")])
        with pytest.raises(StoreError, match="outside"):
            store.mdelete([key])
    assert (outside / "secret.txt").read_bytes() == b"secret"
    assert sorted(p.name for p in outside.iterdir()) == ["secret.txt"]
    # Listing does not follow links either: only the real object is a key.
    assert list(store.yield_keys()) == ["inside.txt"]
    assert list(store.yield_keys(prefix="dir/")) == []


def test_a_symlinked_root_is_fine(tmp_path: Path) -> None:
    real = tmp_path / "real"
    real.mkdir()
    (tmp_path / "link").symlink_to(real, target_is_directory=True)
    store = LocalObjectStore(tmp_path / "link")
    key = store.put(PNG, "image/png")
    assert (real / key).read_bytes() == PNG
    assert store.mget([key]) == [PNG]


# -- listing, links, async ----------------------------------------------------------------------------------------


def test_yield_keys_with_and_without_prefix(store: LocalObjectStore) -> None:
    store.mset([(k, k.encode()) for k in ("a/b/c.txt", "a/d.txt", "ab.txt", "b/x", "sha256/ab/1.png")])
    (store.root / "a" / ".mmrag-tmp-deadbeef").write_bytes(b"in-flight write")  # e.g. left by a killed process

    assert sorted(store.yield_keys()) == ["a/b/c.txt", "a/d.txt", "ab.txt", "b/x", "sha256/ab/1.png"]
    assert sorted(store.yield_keys(prefix="a/")) == ["a/b/c.txt", "a/d.txt"]
    assert sorted(store.yield_keys(prefix="a")) == ["a/b/c.txt", "a/d.txt", "ab.txt"]
    assert list(store.yield_keys(prefix="a/b")) == ["a/b/c.txt"]
    assert list(store.yield_keys(prefix="sha256/a")) == ["sha256/ab/1.png"]
    assert list(store.yield_keys(prefix="zz/")) == []
    assert list(store.yield_keys(prefix="../")) == []
    assert list(store.yield_keys(prefix="/etc/")) == []


def test_uri_is_an_openable_absolute_file_uri(tmp_path: Path) -> None:
    store = LocalObjectStore(tmp_path / "objects dir ü")  # a space and non-ASCII must be quoted
    key = store.put(PNG, "image/png")
    uri = store.uri(key)
    parsed = urllib.parse.urlparse(uri)
    assert parsed.scheme == "file" and " " not in uri
    path = Path(urllib.request.url2pathname(parsed.path))
    assert path.is_absolute() and path == store.root / key
    with urllib.request.urlopen(uri) as resp:  # file:// needs no socket
        assert resp.read() == PNG


def test_relative_roots_are_made_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    store = LocalObjectStore("objects")
    assert store.root == tmp_path.resolve() / "objects"
    assert store.uri("a.png").startswith("file:///")


def test_async_methods_from_base_store(store: LocalObjectStore) -> None:
    async def run() -> tuple[list[bytes | None], list[str], list[bytes | None]]:
        await store.amset([("x/1.bin", b"one"), ("x/2.bin", b"two")])
        got = await store.amget(["x/2.bin", "x/3.bin", "x/1.bin"])
        keys = [k async for k in store.ayield_keys(prefix="x/")]
        await store.amdelete(["x/1.bin"])
        return got, keys, await store.amget(["x/1.bin", "x/2.bin"])

    got, keys, after = asyncio.run(run())
    assert got == [b"two", None, b"one"]
    assert sorted(keys) == ["x/1.bin", "x/2.bin"]
    assert after == [None, b"two"]
