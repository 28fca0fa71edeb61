"""Compressed input is expanded as a stream and refused, with the file named, once it passes a limit."""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import tracemalloc
import zipfile

import pytest

from engine.errors import DataError
from engine.io import iter_csv_chunks, read_csv, source
from engine.io.source import MAX_EXPANDED_ENV, MAX_RATIO_ENV

ROWS = b"1,2\n" + b"\n" * 50_000_000  # one row, then 50 MB of blank lines (compresses like zeros)


def _zip(data: bytes) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("inner.csv", b"a,b\n" + data)
    return buf.getvalue()


BOMBS = {
    "gzip": ("bomb.csv.gz", lambda d: gzip.compress(b"a,b\n" + d, 1)),
    "bz2": ("bomb.csv.bz2", lambda d: bz2.compress(b"a,b\n" + d, 1)),
    "xz": ("bomb.csv", lambda d: lzma.compress(b"a,b\n" + d, preset=0)),  # named .csv: found by magic bytes
    "zip": ("bomb.zip", _zip),
}


@pytest.fixture(scope="module")
def bombs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("bombs")
    out = {}
    for kind, (name, pack) in BOMBS.items():
        path = folder / name
        path.write_bytes(pack(ROWS))
        out[kind] = path
    return out


@pytest.mark.parametrize("kind", sorted(BOMBS))
def test_whole_load_stops_at_the_limit_without_holding_the_expansion(bombs, kind, monkeypatch):
    monkeypatch.setenv(MAX_EXPANDED_ENV, str(5_000_000))
    tracemalloc.start()
    try:
        with pytest.raises(DataError, match="expands past 5 MB") as info:
            read_csv(bombs[kind])
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert str(bombs[kind]) in str(info.value) and kind in str(info.value)
    assert peak < 25_000_000  # the 50 MB expansion was never held


@pytest.mark.parametrize("kind", sorted(BOMBS))
def test_streamed_read_stops_at_the_limit(bombs, kind, monkeypatch):
    monkeypatch.setenv(MAX_EXPANDED_ENV, str(5_000_000))
    with pytest.raises(DataError, match="expands past 5 MB") as info:
        for _ in iter_csv_chunks(bombs[kind], chunk_rows=10_000):
            pass
    assert str(bombs[kind]) in str(info.value)


def test_a_file_under_the_limit_reads_whole_and_streamed(tmp_path, monkeypatch):
    monkeypatch.setenv(MAX_EXPANDED_ENV, str(5_000_000))
    path = tmp_path / "small.csv.gz"
    path.write_bytes(gzip.compress(b"a,b\n" + b"1,2\n" * 1000))
    assert len(read_csv(path).frame) == 1000
    assert sum(len(c) for c in iter_csv_chunks(path, chunk_rows=300)) == 1000


def test_default_limit_refuses_a_bomb_by_its_ratio(tmp_path, monkeypatch):
    """No size setting: a file expanding over 1000 times is a bomb, not a table."""
    monkeypatch.delenv(MAX_EXPANDED_ENV, raising=False)
    monkeypatch.delenv(MAX_RATIO_ENV, raising=False)
    monkeypatch.setattr(source, "_RATIO_FLOOR", 1 << 20)  # judged past 1 MiB here (64 MiB in use)
    path = tmp_path / "ratio.csv.bz2"
    path.write_bytes(bz2.compress(b"a,b\n" + ROWS, 1))
    with pytest.raises(DataError, match="decompression bomb"):
        read_csv(path)


def _cr_only(rows: int) -> bytes:
    lines = ["id,amount,kind"] + [f"{i},{i * 1.5},k{i % 3}" for i in range(rows)]
    return "\r".join(lines).encode() + b"\r"


def test_cr_only_line_endings_read_every_row(tmp_path):
    path = tmp_path / "mac.csv"
    path.write_bytes(_cr_only(199))
    loaded = read_csv(path)
    assert len(loaded.frame) == 199 and list(loaded.frame.columns) == ["id", "amount", "kind"]
    assert loaded.frame["amount"].iloc[-1] == 198 * 1.5
    assert sum(len(c) for c in iter_csv_chunks(path, chunk_rows=50)) == 199
    packed = tmp_path / "mac.csv.gz"
    packed.write_bytes(gzip.compress(_cr_only(199)))
    assert len(read_csv(packed).frame) == 199


def test_cr_only_errors_are_located_on_the_right_row(tmp_path):
    data = _cr_only(20).replace(b"\r7,10.5,k1\r", b"\r7,10.5,k1,extra\r")
    path = tmp_path / "mac_bad.csv"
    path.write_bytes(data)
    with pytest.raises(DataError, match="row 9"):
        read_csv(path)


def test_a_carriage_return_inside_a_value_is_not_a_line_end(tmp_path):
    path = tmp_path / "crlf.csv"
    path.write_bytes(b'a,b\r\n1,"x\ry"\r\n2,z\r\n')
    assert len(read_csv(path).frame) == 2


def test_score_refuses_a_bomb_before_counting_it_all(bombs, tmp_path, monkeypatch):
    """``score`` counts rows for its progress bar first: that pass is guarded too."""
    from engine.streaming import count_data_rows

    monkeypatch.setenv(MAX_EXPANDED_ENV, str(5_000_000))
    for kind in BOMBS:
        with pytest.raises(DataError, match="expands past 5 MB"):
            count_data_rows(bombs[kind])
