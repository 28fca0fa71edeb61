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


MAX_EXPANDED_ENV = "ANOMALY_DESK_MAX_EXPANDED_BYTES"
MAX_RATIO_ENV = "ANOMALY_DESK_MAX_EXPANSION_RATIO"
DEFAULT_MAX_RATIO = 1000  # real CSV files compress 5-50x (xz/bz2 of very repetitive tables ~200x)
_RATIO_FLOOR = 64 << 20  # the ratio is only judged past this many expanded bytes
_CHUNK = 1 << 20


def _total_memory() -> int:
    try:
        return int(os.sysconf("SC_PAGE_SIZE")) * int(os.sysconf("SC_PHYS_PAGES"))
    except (AttributeError, ValueError, OSError):  # not POSIX: assume a modest desktop
        return 8 << 30


def max_expanded_bytes(streamed: bool = False) -> int:
    """How far a compressed input may expand before it is refused.

    ``ANOMALY_DESK_MAX_EXPANDED_BYTES`` sets it (bytes); by default a whole load may expand to half the
    physical memory (parsing needs about three times the text, so more cannot be loaded anyway) and a
    streamed read (``score``) to eight times the physical memory."""
    value = os.environ.get(MAX_EXPANDED_ENV, "").strip()
    if value:
        try:
            return max(int(float(value)), 1)
        except ValueError:
            raise DataError(f"{MAX_EXPANDED_ENV} must be a number of bytes, not {value!r}") from None
    memory = _total_memory()
    return memory * 8 if streamed else memory // 2


def max_expansion_ratio() -> float:
    """Expanded bytes per compressed byte beyond which a file is a decompression bomb, not a table
    (``ANOMALY_DESK_MAX_EXPANSION_RATIO``, default 1000; judged once 64 MiB have come out)."""
    value = os.environ.get(MAX_RATIO_ENV, "").strip()
    try:
        return float(value) if value else float(DEFAULT_MAX_RATIO)
    except ValueError:
        raise DataError(f"{MAX_RATIO_ENV} must be a number, not {value!r}") from None


def _gb(n: int) -> str:
    return f"{n / 1e9:.3g} GB" if n >= 1e8 else f"{n / 1e6:.3g} MB"


class ExpansionGuard(io.RawIOBase):
    """A read-only stream over a decompressor that counts the bytes it gives and raises a located
    DataError as soon as they pass the limit (or the bomb ratio), so a small file that unpacks to
    gigabytes is refused after reading no more than the limit, never held in memory."""

    def __init__(self, inner, name: str, compression: str, compressed_size: int, limit: int,
                 ratio: float | None = None, also_close=()):
        super().__init__()
        self.also_close = also_close
        self.inner, self.name, self.compression = inner, name, compression
        self.compressed_size, self.limit, self.ratio = max(int(compressed_size), 1), int(limit), ratio
        self.count = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        view = memoryview(buffer)
        allowed = self.limit - self.count + 1  # one byte past the limit proves it is passed
        data = self.inner.read(max(1, min(len(view), allowed)))
        n = len(data)
        view[:n] = data
        self._account(n)
        return n

    def _account(self, n: int) -> None:
        self.count += n
        if self.count > self.limit:
            raise DataError(f"the {self.compression} file expands past {_gb(self.limit)} (from "
                            f"{_gb(self.compressed_size)} compressed): refused; raise {MAX_EXPANDED_ENV} "
                            "if the file is genuine", file=self.name)
        if (self.ratio is not None and self.count > _RATIO_FLOOR
                and self.count > self.ratio * self.compressed_size):
            raise DataError(f"the {self.compression} file expands past {_gb(self.count)} from "
                            f"{_gb(self.compressed_size)} compressed (over {self.ratio:g} times): a "
                            f"decompression bomb, not a table; refused (set {MAX_RATIO_ENV} if it is genuine)",
                            file=self.name)

    def close(self) -> None:
        try:
            self.inner.close()
            for other in self.also_close:
                other.close()
        finally:
            super().close()


def open_decompressed(fileobj, compression: str, name: str, compressed_size: int,
                      streamed: bool) -> io.BufferedReader:
    """A buffered stream of the decompressed bytes of ``fileobj``, guarded by ``ExpansionGuard``;
    closing it closes ``fileobj`` too."""
    also_close: tuple = (fileobj,)
    if compression == "gzip":
        inner = gzip.GzipFile(fileobj=fileobj)
    elif compression == "bz2":
        inner = bz2.BZ2File(fileobj)
    elif compression == "xz":
        inner = lzma.LZMAFile(fileobj)  # noqa: SIM115 - closed by the guard
    else:
        archive = zipfile.ZipFile(fileobj)
        inner = archive.open(_zip_member(archive, name))
        also_close = (archive, fileobj)
    guard = ExpansionGuard(inner, name, compression, compressed_size, max_expanded_bytes(streamed),
                           max_expansion_ratio(), also_close)
    return io.BufferedReader(guard, buffer_size=_CHUNK)


def open_input(path: str | Path, streamed: bool = True):
    """A binary stream of a file's bytes, decompressed (detected by magic bytes) through the guard:
    for anything that reads an input file outside ``read_csv``/``iter_csv_chunks`` (row counts)."""
    path = Path(path)
    name = str(path)
    _check_path(path, name)
    f = open(path, "rb")  # noqa: SIM115 - returned open; the caller closes it
    try:
        compression = _compression_of(path, f.read(8))
        f.seek(0)
        if compression is None:
            return f
        return open_decompressed(f, compression, name, os.fstat(f.fileno()).st_size, streamed)
    except BaseException:
        f.close()
        raise


def _decompress(raw: bytes, compression: str | None, name: str) -> bytes:
    """The expanded bytes of a whole (compressed) file, read in blocks and refused past the limit."""
    if compression is None:
        return raw
    try:
        with open_decompressed(io.BytesIO(raw), compression, name, len(raw), streamed=False) as stream:
            blocks = []
            while block := stream.read(_CHUNK * 8):
                blocks.append(block)
        return b"".join(blocks)
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


_BARE_CR = re.compile(rb"\r(?!\n)")


def _normalise_newlines(data: bytes) -> bytes:
    """Old Mac files end lines with a bare CR: turn those into LF so rows are found (and counted) like
    in any other file. Only when bare CRs outnumber LFs, so a stray CR inside a value stays as it is."""
    if b"\r" not in data:
        return data
    bare = data.count(b"\r") - data.count(b"\r\n")
    if bare == 0 or bare <= data.count(b"\n"):
        return data
    return _BARE_CR.sub(b"\n", data)


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
