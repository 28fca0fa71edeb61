"""Bytes of an input file: path checks, decompression (gzip, zip, bz2, xz by magic bytes), text
checks and re-encoding to UTF-8."""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import os
import re
import zipfile
import zlib
from pathlib import Path

import numpy as np

from engine.errors import DataError

MAX_LISTED = 5  # rows/values quoted in a message
_MAGIC = ((b"%PDF", "a PDF document"), (b"\x89PNG", "a PNG image"), (b"\xff\xd8\xff", "a JPEG image"),
          (b"GIF8", "a GIF image"), (b"\xd0\xcf\x11\xe0", "an old-style Office file (.xls/.doc)"),
          (b"SQLite format 3\x00", "an SQLite database"), (b"PAR1", "a Parquet file"),
          (b"\x7fELF", "a program (ELF)"), (b"MZ", "a Windows program"), (b"7z\xbc\xaf", "a 7-Zip archive"),
          (b"Rar!", "a RAR archive"), (b"\x80\x04", "a Python pickle"), (b"\x80\x05", "a Python pickle"))


def _open_binary(path: Path):
    return open(path, "rb")  # noqa: SIM115 - the caller closes it; kept apart so tests can simulate faults


def _check_path(path: Path, name: str) -> None:
    if not os.path.lexists(path):
        raise DataError("file not found", file=name)
    if path.is_dir():
        raise DataError("is a folder, not a CSV file", file=name)
    if not path.exists():
        raise DataError("file not found (broken link)", file=name)


def _raw_bytes(path: Path, name: str) -> bytes:
    _check_path(path, name)
    try:
        with _open_binary(path) as f:
            return f.read()
    except PermissionError:
        raise DataError("permission denied: the file cannot be read", file=name) from None
    except IsADirectoryError:
        raise DataError("is a folder, not a CSV file", file=name) from None
    except OSError as exc:
        raise DataError(f"cannot be read ({exc.strerror or exc})", file=name) from None


def _compression_of(path: Path, head: bytes) -> str | None:
    if head.startswith(b"\x1f\x8b"):
        return "gzip"
    if head.startswith(b"PK\x03\x04") or head.startswith(b"PK\x05\x06"):
        return "zip"
    if head.startswith(b"BZh"):
        return "bz2"
    if head.startswith(b"\xfd7zXZ\x00"):
        return "xz"
    suffix = path.suffix.lower()
    return {".gz": "gzip", ".zip": "zip", ".bz2": "bz2", ".xz": "xz"}.get(suffix)


def _zip_member(archive: zipfile.ZipFile, name: str) -> str:
    members = [i.filename for i in archive.infolist()
               if not i.is_dir() and not i.filename.startswith("__MACOSX/")
               and not os.path.basename(i.filename).startswith(".")]
    if any(m.startswith("xl/") for m in members):
        raise DataError("is an Excel workbook (.xlsx), not a CSV file: save it as CSV first", file=name)
    if not members:
        raise DataError("the zip archive holds no file", file=name)
    csvs = [m for m in members if m.lower().endswith((".csv", ".tsv", ".txt"))]
    if len(members) == 1:
        return members[0]
    if len(csvs) == 1:
        return csvs[0]
    raise DataError(f"the zip archive holds {len(members)} files ({', '.join(members[:MAX_LISTED])}); "
                    "expected exactly one CSV file", file=name)


def _decompress(raw: bytes, compression: str | None, name: str) -> bytes:
    if compression is None:
        return raw
    try:
        if compression == "gzip":
            return gzip.decompress(raw)
        if compression == "bz2":
            return bz2.decompress(raw)
        if compression == "xz":
            return lzma.decompress(raw)
        with zipfile.ZipFile(io.BytesIO(raw)) as archive:
            return archive.read(_zip_member(archive, name))
    except DataError:
        raise
    except EOFError:
        raise DataError(f"the {compression} file is truncated (it ends before the end of its compressed data)",
                        file=name) from None
    except (OSError, zlib.error, lzma.LZMAError, zipfile.BadZipFile, ValueError) as exc:
        raise DataError(f"the {compression} file is damaged ({exc})", file=name) from None


_NON_SPACE = re.compile(rb"\S")


def _has_content(data: bytes, start: int = 0) -> bool:
    return _NON_SPACE.search(data, start) is not None  # unlike strip(), copies nothing


def _row_of_offset(data: bytes, offset: int) -> int:
    return data.count(b"\n", 0, offset) + 1


def _check_text(data: bytes, name: str) -> None:
    for magic, what in _MAGIC:
        if data.startswith(magic):
            raise DataError(f"is {what}, not a CSV text file", file=name)
    nul = data.find(b"\x00")
    if nul >= 0:
        raise DataError("is not a text file: it contains binary data (a NUL byte)",
                        file=name, row=_row_of_offset(data, nul))
    sample = np.frombuffer(data[:65536], dtype=np.uint8)
    control = (sample < 32) & ~np.isin(sample, (9, 10, 12, 13))
    if control.mean() > 0.01:
        first = int(np.flatnonzero(control)[0])
        raise DataError("is not a text file: it contains binary data (control characters)",
                        file=name, row=_row_of_offset(data, first))


def _to_utf8(data: bytes, name: str) -> tuple[bytes, str, list[str]]:
    """The file's bytes as UTF-8 without a BOM, the encoding found, and notes about it."""
    if data.startswith(b"\xef\xbb\xbf"):
        data, encoding = data[3:], "utf-8-sig"
    elif data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return data.decode("utf-16").encode("utf-8"), "utf-16", []
        except UnicodeDecodeError as exc:
            raise DataError(f"starts like UTF-16 text but is not valid UTF-16 ({exc.reason})", file=name) from None
    else:
        encoding = "utf-8"
    _check_text(data, name)
    try:
        data.decode("utf-8")
        return data, encoding, []
    except UnicodeDecodeError as exc:
        bad_row = _row_of_offset(data, exc.start)
    try:
        text, encoding = data.decode("cp1252"), "cp1252"
    except UnicodeDecodeError:  # bytes cp1252 leaves undefined: latin-1 maps every byte
        text, encoding = data.decode("latin-1"), "latin-1"
    notes = []
    if re.search(rb"[\xc2-\xf4][\x80-\xbf]", data):
        notes.append(f"the file mixes encodings: not valid UTF-8 (first bad byte on row {bad_row}) but it "
                     f"also contains UTF-8 text; read as {encoding}, so some accented characters may be wrong")
    else:
        notes.append(f"not UTF-8 (first non-UTF-8 byte on row {bad_row}): read as {encoding}")
    return text.encode("utf-8"), encoding, notes
