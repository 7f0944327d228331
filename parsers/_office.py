"""What every zip-based Office file (DOCX, PPTX, XLSX) passes before a library opens it.

* :func:`ooxml_mime` tells the format from the archive's entry names (``word/document.xml``...), read from the
  central directory alone: nothing is decompressed to sniff.
* :func:`open_package` checks the archive against the limits before anything is extracted: the entry count
  (``max_archive_entries``) and the declared uncompressed size (``max_unpacked_bytes``). Python's ``zipfile``
  never inflates an entry past its declared size (a lie ends in a CRC error), so the declared sizes are a real
  bound on what python-docx, python-pptx and openpyxl can unpack. Macro-enabled files (``.docm``, ``.pptm``,
  ``.xlsm``) are read like the others: their ``vbaProject.bin`` is never loaded or run, and a warning says so.
* :func:`cfb_reason` explains an OLE compound file: a password-protected Office document is one (its
  ``EncryptedPackage`` stream), and so are the legacy ``.doc``/``.xls``/``.ppt``.
"""

from __future__ import annotations

import importlib
import io
import zipfile
from types import ModuleType
from typing import BinaryIO

from mmrag.elements import Blob
from mmrag.errors import MissingDependencyError, ParseError
from mmrag.parsers._report import warn
from mmrag.parsers.options import ParseOptions

__all__ = ["CFB_MAGIC", "CFB_MIME", "DOCX", "OOXML_TYPES", "PPTX", "XLSX", "cfb_reason", "ooxml_mime",
           "open_package", "require"]

DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
PPTX = "application/vnd.openxmlformats-officedocument.presentationml.presentation"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
OOXML_TYPES = frozenset({DOCX, PPTX, XLSX})
CFB_MIME = "application/x-ole-storage"
"""An OLE compound file: an encrypted Office document, or a legacy binary .doc/.xls/.ppt."""
CFB_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"

_MAIN_PARTS = {"word/document.xml": DOCX, "ppt/presentation.xml": PPTX, "xl/workbook.xml": XLSX}
_MACROS = ("word/vbaProject.bin", "ppt/vbaProject.bin", "xl/vbaProject.bin")
_NAMES = {DOCX: "Word document", PPTX: "PowerPoint deck", XLSX: "Excel workbook"}


def ooxml_mime(data: bytes | BinaryIO) -> str | None:
    """The Office MIME type of a zip archive from its entry names, ``application/zip`` for any other archive, or
    None when ``data`` (bytes, or a binary file open for reading) is no readable zip."""
    try:
        with zipfile.ZipFile(io.BytesIO(data) if isinstance(data, bytes) else data) as archive:
            names = set(archive.namelist())
    except (zipfile.BadZipFile, OSError, ValueError, EOFError):
        return None
    return next((mime for part, mime in _MAIN_PARTS.items() if part in names), "application/zip")


def cfb_reason(data: bytes) -> str:
    """Why an OLE compound file cannot be parsed, with what to do about it."""
    if "EncryptedPackage".encode("utf-16-le") in data:
        return ("the file is password-protected (an encrypted Office document): remove the password (File › Info › "
                "Protect, or msoffcrypto-tool) and save it again")
    return ("a legacy binary Office file (.doc, .xls or .ppt): save it as .docx, .xlsx or .pptx (LibreOffice: "
            "soffice --headless --convert-to docx FILE)")


def open_package(blob: Blob, expected: str, options: ParseOptions) -> zipfile.ZipFile:
    """``blob`` as a checked zip archive of the ``expected`` Office type (raises :class:`ParseError` naming why not).

    Checks, before any entry is inflated: it is a zip, it is the expected format, at most
    ``max_archive_entries`` entries and at most ``max_unpacked_bytes`` declared uncompressed bytes. Warns that a
    macro-enabled file's macros were not run.
    """
    what = _NAMES[expected]
    if blob.data.startswith(CFB_MAGIC):
        raise ParseError(blob.source, cfb_reason(blob.data))
    try:
        archive = zipfile.ZipFile(io.BytesIO(blob.data))
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as e:
        raise ParseError(blob.source, f"not a {what}: the zip container is damaged or missing ({e})") from e
    try:
        infos = archive.infolist()
        if len(infos) > options.max_archive_entries:
            raise ParseError(blob.source, f"the archive has {len(infos):,} entries, over the limit of "
                                          f"{options.max_archive_entries:,} (max_archive_entries): refused as a "
                                          "possible zip bomb")
        unpacked = sum(i.file_size for i in infos)
        if unpacked > options.max_unpacked_bytes:
            packed = max(1, sum(i.compress_size for i in infos))
            raise ParseError(blob.source, f"it would unpack to {unpacked:,} bytes ({unpacked / packed:,.0f} times its "
                                          f"compressed size), over the {options.max_unpacked_bytes:,}-byte limit "
                                          "(max_unpacked_bytes): refused as a possible zip bomb")
        names = {i.filename for i in infos}
        found = ooxml_mime(blob.data) if names else None
        if found != expected:
            inside = _NAMES.get(found or "", "a zip archive of something else")
            raise ParseError(blob.source, f"not a {what}: the content is {inside}")
        if any(m in names for m in _MACROS):
            warn(blob.source, "macro-enabled file: its macros (vbaProject.bin) were not run, only the content is read")
    except BaseException:
        archive.close()
        raise
    return archive


def require(module: str, package: str, feature: str) -> ModuleType:
    """Import an optional library of the ``office`` extra, or raise :class:`MissingDependencyError` naming it."""
    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise MissingDependencyError(package, "office", feature) from e
