"""Reading data: gzip-compressed files, CSV on stdin, and the caps that keep both safe."""

import gzip
import io
import sys
import tracemalloc

import numpy as np
import pytest

from vmonf_jax.files import io as vio
from vmonf_jax.files import outputs, streams

X = np.array([[0.5, -1.0], [2.0, 3.25], [4.0, 1e-3]])
CSV = "x,y,label\n0.5,-1,0\n2,3.25,\n4,0.001,1\n"


def _gz(path, data: bytes):
    with gzip.open(path, "wb") as f:
        f.write(data)
    return path


def _npy_bytes(arr):
    buf = io.BytesIO()
    np.save(buf, arr)
    return buf.getvalue()


@pytest.fixture
def stdin(monkeypatch):
    """``stdin(data)``: make ``sys.stdin`` a binary-backed text stream holding ``data``."""
    def feed(data: bytes):
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data), "utf-8"))
    return feed


def test_csv_gz_reads_as_the_csv(tmp_path):
    (tmp_path / "d.csv").write_text(CSV)
    gz = _gz(tmp_path / "d.csv.gz", CSV.encode())
    plain = vio.read_data(tmp_path / "d.csv", label_column="label")
    packed = vio.read_data(gz, label_column="label")
    np.testing.assert_array_equal(packed.X, X)
    np.testing.assert_array_equal(packed.X, plain.X)
    np.testing.assert_array_equal(packed.labels, [0, -1, 1])
    assert packed.columns == plain.columns == ["x", "y"]
    labels = _gz(tmp_path / "l.CSV.GZ", b"label\n1\n\n0\n-1\n")  # suffixes in any case
    np.testing.assert_array_equal(vio.read_labels(labels), [1, -1, 0, -1])  # blank: -1


def test_npy_gz_reads_the_array(tmp_path):
    gz = _gz(tmp_path / "d.npy.gz", _npy_bytes(X.astype(np.float32)))
    np.testing.assert_array_equal(vio.read_data(gz).X, X.astype(np.float32))
    col = _gz(tmp_path / "c.npy.gz", _npy_bytes(np.arange(4.0)))  # 1-D: one column
    assert vio.read_data(col).X.shape == (4, 1)
    lab = _gz(tmp_path / "l.npy.gz", _npy_bytes(np.array([0, -1, 2])))
    np.testing.assert_array_equal(vio.read_labels(lab), [0, -1, 2])
    with pytest.raises(vio.DataError, match="--key applies to .npz files only"):
        vio.read_data(gz, key="X")


def test_stdin_is_csv(stdin, monkeypatch):
    stdin(CSV.encode())
    t = vio.read_data("-", label_column="label")
    np.testing.assert_array_equal(t.X, X)
    np.testing.assert_array_equal(t.labels, [0, -1, 1])
    stdin(b"\xef\xbb\xbf1\n\n2\n")  # a byte-order mark, a blank cell (-1), no header
    np.testing.assert_array_equal(vio.read_labels("-"), [1, -1, 2])
    monkeypatch.setattr(sys, "stdin", io.StringIO("1,2\n3,4\n"))  # a text-only stream
    np.testing.assert_array_equal(vio.read_data("-").X, [[1, 2], [3, 4]])


@pytest.mark.parametrize("data,match", [
    (b"x,y\n1,2\n3,abc\n", r"<stdin>: line 3, column 2 \('y'\): 'abc' is not a number"),
    (b"x,y\n1,2\n3,nan\n", "<stdin>: line 3, column 2 .*non-finite value nan"),
    (b"", "<stdin>: no data rows"),
    (b"1,2\n\xff\xfe,3\n", "<stdin>: not a text CSV file"),
])
def test_stdin_problems_name_stdin_and_the_line(stdin, data, match):
    stdin(data)
    with pytest.raises(vio.DataError, match=match):
        vio.read_data("-")


def test_decompressed_and_piped_input_are_capped(tmp_path, stdin, monkeypatch):
    monkeypatch.setattr(streams, "MAX_STREAM_BYTES", 10_000)
    rows = b"1,2\n" * 20_000  # 80 kB: over the cap
    bomb = _gz(tmp_path / "bomb.csv.gz", rows)
    assert bomb.stat().st_size < 10_000  # small on disk, large once decompressed
    with pytest.raises(vio.DataError, match="bomb.csv.gz: more than 10000 bytes"):
        vio.read_data(bomb)
    stdin(rows)
    with pytest.raises(vio.DataError, match="<stdin>: more than 10000 bytes"):
        vio.read_data("-")
    big = _gz(tmp_path / "big.npy.gz", _npy_bytes(np.zeros((2000, 2))))  # 32 kB of data
    with pytest.raises(vio.DataError, match="a .gz file may decompress to 10000 bytes"):
        vio.read_data(big)
    (tmp_path / "ok.csv").write_bytes(rows)  # plain files are not capped
    assert vio.read_data(tmp_path / "ok.csv").X.shape == (20_000, 2)


def test_npy_gz_header_claiming_a_huge_array_allocates_nothing(tmp_path):
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": "<f8", "fortran_order": False,
                                               "shape": (10**13, 2)})
    path = _gz(tmp_path / "huge.npy.gz", buf.getvalue() + bytes(64))
    tracemalloc.start()
    try:
        with pytest.raises(vio.DataError, match=r"claims shape \(10000000000000, 2\)"):
            vio.read_data(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 2**24  # nothing near the claimed 160 TB (or the cap) was allocated


def test_truncated_and_damaged_gzip(tmp_path):
    whole = _npy_bytes(np.ones((100, 2)))
    short = _gz(tmp_path / "short.npy.gz", whole[:-80])  # a valid gzip of a cut .npy
    with pytest.raises(vio.DataError, match="short.npy.gz: its header claims 1728 bytes but "
                                            "it decompresses to 1648"):
        vio.read_data(short)
    packed = gzip.compress(CSV.encode() * 50)
    (tmp_path / "cut.csv.gz").write_bytes(packed[: len(packed) // 2])  # a cut gzip stream
    with pytest.raises(vio.DataError, match="cut.csv.gz: cannot read"):
        vio.read_data(tmp_path / "cut.csv.gz")
    (tmp_path / "plain.csv.gz").write_text(CSV)  # not gzip at all
    with pytest.raises(vio.DataError, match="plain.csv.gz: cannot read: Not a gzipped file"):
        vio.read_data(tmp_path / "plain.csv.gz")
    (tmp_path / "plain.npy.gz").write_bytes(whole)
    with pytest.raises(vio.DataError, match="plain.npy.gz: cannot read as .npy.gz"):
        vio.read_data(tmp_path / "plain.npy.gz")


@pytest.mark.parametrize("name", ["d.txt.gz", "d.gz", "d.npz.gz", ".csv"])
def test_unsupported_names(tmp_path, name):
    (tmp_path / name).write_bytes(b"")
    with pytest.raises(vio.DataError, match="unsupported data file type"):
        vio.read_data(tmp_path / name)


def test_outputs_stay_plain(tmp_path):
    with pytest.raises(vio.DataError, match="unsupported output type '.gz'"):
        outputs.check_output(tmp_path / "out.csv.gz")
    assert outputs.check_output(tmp_path / "out.csv") == ".csv"
