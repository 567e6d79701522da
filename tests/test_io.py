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
    np.testing.assert_array_equal(vio.read_labels(labels).labels, [1, -1, 0, -1])  # blank: -1


def test_npy_gz_reads_the_array(tmp_path):
    gz = _gz(tmp_path / "d.npy.gz", _npy_bytes(X.astype(np.float32)))
    np.testing.assert_array_equal(vio.read_data(gz).X, X.astype(np.float32))
    col = _gz(tmp_path / "c.npy.gz", _npy_bytes(np.arange(4.0)))  # 1-D: one column
    assert vio.read_data(col).X.shape == (4, 1)
    lab = _gz(tmp_path / "l.npy.gz", _npy_bytes(np.array([0, -1, 2])))
    np.testing.assert_array_equal(vio.read_labels(lab).labels, [0, -1, 2])
    with pytest.raises(vio.DataError, match="--key applies to .npz files only"):
        vio.read_data(gz, key="X")


def test_stdin_is_csv(stdin, monkeypatch):
    stdin(CSV.encode())
    t = vio.read_data("-", label_column="label")
    np.testing.assert_array_equal(t.X, X)
    np.testing.assert_array_equal(t.labels, [0, -1, 1])
    stdin(b"\xef\xbb\xbf1\n\n2\n")  # a byte-order mark, a blank cell (-1), no header
    np.testing.assert_array_equal(vio.read_labels("-").labels, [1, -1, 2])
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


def test_semicolons_and_tabs_separate_cells_as_the_first_row_shows(tmp_path, stdin):
    """Spreadsheets in many locales save ';'-separated CSV; .tsv files are tab-separated. The
    first row's commonest separator splits every row (a quoted comma or ';' stays a cell's),
    and the same numbers come out whichever separator wrote them."""
    (tmp_path / "d.csv").write_text(CSV)
    want = vio.read_data(tmp_path / "d.csv", label_column="label")
    for name, sep in (("semi.csv", ";"), ("tabs.csv", "\t"), ("d.tsv", "\t"),
                      ("D.TSV.GZ", "\t")):
        text = CSV.replace(",", sep)
        path = tmp_path / name
        if name.lower().endswith(".gz"):
            _gz(path, text.encode())
        else:
            path.write_text(text)
        got = vio.read_data(path, label_column="label")
        np.testing.assert_array_equal(got.X, want.X)
        np.testing.assert_array_equal(got.labels, want.labels)
        assert got.columns == want.columns
    stdin(b"a;b\n1;2\n")
    np.testing.assert_array_equal(vio.read_data("-").X, [[1.0, 2.0]])
    (tmp_path / "quoted.csv").write_text('"name, full";x\n"Smith, J.";1.5\n"a;b";2\n')
    np.testing.assert_array_equal(vio.read_data(tmp_path / "quoted.csv", columns=["x"]).X,
                                  [[1.5], [2.0]])
    (tmp_path / "one.tsv").write_text("x,y\n1,2\n")  # a .tsv file is split at tabs only
    with pytest.raises(vio.DataError, match="'1,2' is not a number"):
        vio.read_data(tmp_path / "one.tsv")
    np.testing.assert_array_equal(vio.read_labels(_gz(tmp_path / "l.tsv.gz", b"c\nA\nB\n"))
                                  .classes, ["A", "B"])
    for codec in ("utf-16", "utf-16-be", "utf-8-sig"):  # "Unicode text": UTF-16 with its mark
        bom = "\ufeff" if codec == "utf-16-be" else ""
        (tmp_path / "u.csv").write_bytes((bom + CSV.replace(",", "\t")).encode(codec))
        _gz(tmp_path / "u.csv.gz", (tmp_path / "u.csv").read_bytes())
        for name in ("u.csv", "u.csv.gz"):
            got = vio.read_data(tmp_path / name, label_column="label")
            np.testing.assert_array_equal(got.X, want.X)
            assert got.columns == want.columns


def test_a_first_column_without_a_header_name_is_row_names(tmp_path):
    """R's write.csv and pandas' to_csv write row names first, under a blank header cell:
    they are not data (numbers or names), unless columns are chosen; any other blank
    header cell, or a table of one other column, keeps its column."""
    for names in ('"1","2","3"', "Mazda RX4,Fiat 128,Valiant"):
        text = '"","x","y"\n' + "".join(f"{r},{a},{b}\n" for r, (a, b) in
                                        zip(names.split(","), [(0.5, -1), (2, 3.25), (4, 1e-3)]))
        (tmp_path / "r.csv").write_text(text)
        t = vio.read_data(tmp_path / "r.csv")
        np.testing.assert_array_equal(t.X, X)
        assert t.unnamed == (0,) and t.columns == ["x", "y"]
    (tmp_path / "n.csv").write_text(",x,label\n7,1.5,0\n8,2.5,1\n")
    t = vio.read_data(tmp_path / "n.csv", label_column="label")
    assert t.unnamed == (0,) and t.X.tolist() == [[1.5], [2.5]] and t.labels.tolist() == [0, 1]
    t = vio.read_data(tmp_path / "n.csv", columns=[0, "x"])  # chosen: read as data
    assert not t.unnamed and t.X.tolist() == [[7, 1.5], [8, 2.5]]
    (tmp_path / "one.csv").write_text(",label\n7,0\n")  # the only column besides labels
    t = vio.read_data(tmp_path / "one.csv", label_column="label")
    assert not t.unnamed and t.X.tolist() == [[7]]
    (tmp_path / "mid.csv").write_text("x,,y\n1,2,3\n")  # blank elsewhere: a column
    t = vio.read_data(tmp_path / "mid.csv")
    assert not t.unnamed and t.X.tolist() == [[1, 2, 3]]


def test_a_separator_ending_each_line_and_a_gap_in_the_first_row(tmp_path):
    """A separator that ends every line leaves a last column without a name: not data, with
    row names too; without a header its empty cells say so. A first row with a gap is
    data, not a header (only text makes one), so no row is lost or read as names."""
    for text, unnamed in (("x,y,\n1,2,\n3,4,\n", (2,)), (",x,y,\n7,1,2,\n8,3,4,\n", (0, 3)),
                          ("x;y;\n1;2;\n3;4;\n", (2,))):
        (tmp_path / "t.csv").write_text(text)
        t = vio.read_data(tmp_path / "t.csv")
        assert t.X.tolist() == [[1, 2], [3, 4]] and t.unnamed == unnamed
    (tmp_path / "h.csv").write_text("1,2,\n3,4,\n")
    with pytest.raises(vio.DataError, match="line 1, column 3: empty cell .* if each line ends "
                                            "with a separator, --columns chooses the others"):
        vio.read_data(tmp_path / "h.csv")
    for first in (",2", "NA,2", "1,"):
        (tmp_path / "g.csv").write_text(f"{first}\n3,4\n5,6\n")
        t = vio.read_data(tmp_path / "g.csv", drop_incomplete=True)
        assert t.columns is None and t.X.tolist() == [[3, 4], [5, 6]] and t.dropped == 1
        with pytest.raises(vio.DataError, match="line 1, column"):
            vio.read_data(tmp_path / "g.csv")
    (tmp_path / "l.csv").write_text("\nA\nB\n")  # a label file's first cell blank: unlabelled
    assert vio.read_labels(tmp_path / "l.csv").labels.tolist() == [-1, 0, 1]


@pytest.mark.parametrize("text, words", [
    ("a;b\n1,5;2\n", "line 2, column 1 ('a'): '1,5' is not a number (a comma in a number"),
    ('a,b\n"1,234.5",2\n', "'1,234.5' is not a number (rows are split"),
    ('a,b\n"1,234",2\n', "'1,234' is not a number (a comma in a number: write a decimal"),
    ("day,b\n2024-03-01,2\n", "'2024-03-01' is not a number (--columns chooses"),
    ("1,5;2\n3,5;4\n", "'5;4' is not a number (rows are split at the first row's commonest"),
    ("a,b\nx,2\n", "'x' is not a number (--columns chooses the numeric columns"),
    ("a,b\nNA,2\n", "'NA' is not a number (--drop-incomplete leaves such rows out)"),
    ("a,b\n,2\n", "column 1 ('a'): empty cell (--drop-incomplete"),
    ("a,b\n1e,2\n", "'1e' is not a number"),  # a mistyped number: no hint fits
])
def test_a_cell_that_is_not_a_number_says_what_to_do(tmp_path, text, words):
    (tmp_path / "d.csv").write_text(text)
    with pytest.raises(vio.DataError) as err:
        vio.read_data(tmp_path / "d.csv")
    assert words in str(err.value)
    assert str(err.value).endswith(")") == ("(" in words)  # a hint, where one was expected


@pytest.mark.parametrize("name", ["d.txt.gz", "d.gz", "d.npz.gz", ".csv"])
def test_unsupported_names(tmp_path, name):
    (tmp_path / name).write_bytes(b"")
    with pytest.raises(vio.DataError, match="unsupported data file type"):
        vio.read_data(tmp_path / name)


def test_outputs_stay_plain(tmp_path):
    with pytest.raises(vio.DataError, match="unsupported output type '.gz'"):
        outputs.check_output(tmp_path / "out.csv.gz")
    assert outputs.check_output(tmp_path / "out.csv") == ".csv"


# -- a user's own table: chosen columns, class names, missing cells ----------------------
TABLE = ("species,bill,island,mass\n"
         "Adelie,39.1,Torgersen,3750\n"
         ",NA,Biscoe,\n"            # a row with missing cells, unlabelled
         "Gentoo,46.5,Biscoe,4500\n"
         "-1,40.3,Dream,3250\n"     # -1 is unlabelled among class names too
         "Adelie,38.0,Dream,3400\n")


def test_columns_are_chosen_by_name_or_index_and_the_rest_is_never_read(tmp_path):
    """The text columns beside the numbers are not parsed; the chosen ones come in the order
    given, with their header names; a name or index that is not there, a column chosen twice
    or also the label column is an error naming it."""
    path = tmp_path / "t.csv"
    path.write_text(TABLE.replace(",NA,Biscoe,\n", ",41.0,Biscoe,3800\n"))
    t = vio.read_data(path, columns=["mass", "1"], label_column="species")
    np.testing.assert_array_equal(t.X[:, 0], [3750, 3800, 4500, 3250, 3400])
    np.testing.assert_array_equal(t.X[:, 1], [39.1, 41.0, 46.5, 40.3, 38.0])
    assert t.columns == ["mass", "bill"] and t.kept is None
    for columns, label, message in (
            (["bill", "depth"], None, "no column named 'depth'"),
            (["bill", "9"], None, "column index 9 is out of range for 4 columns"),
            (["bill", "1"], None, r"column 2 \('bill'\) is chosen twice"),
            (["bill", "species"], "species", "is the label column"),
            (["bill", "island"], None, r"line 2, column 3 \('island'\): 'Torgersen' is not a "
                                       r"number$")):
        with pytest.raises(vio.DataError, match=message):
            vio.read_data(path, columns=columns, label_column=label)
    with pytest.raises(vio.DataError, match=r"line 2, column 1 \('species'\): 'Adelie' is "
                                            r"not a number \(--columns chooses the numeric"):
        vio.read_data(path)  # text beside the numbers, no columns chosen: the hint
    twice = tmp_path / "twice.csv"
    twice.write_text("a,a,b\n1,2,3\n")
    with pytest.raises(vio.DataError, match="the header names 2 columns 'a'"):
        vio.read_data(twice, columns=["a"])
    np.testing.assert_array_equal(vio.read_data(twice, columns=["1", "b"]).X, [[2, 3]])
    arr = tmp_path / "a.npy"
    np.save(arr, np.arange(12.0).reshape(4, 3))
    np.testing.assert_array_equal(vio.read_data(arr, columns=["2", "0"]).X[:, 0], [2, 5, 8, 11])


def test_class_names_label_rows_and_integers_stay_component_indices(tmp_path):
    """A label column holding any non-number is read as class names (sorted; blank and -1
    unlabelled); one of numbers only stays component indices, and must hold integers."""
    path = tmp_path / "t.csv"
    path.write_text(TABLE)
    t = vio.read_data(path, columns=["bill", "mass"], label_column="species",
                      drop_incomplete=True)
    assert t.classes == ["Adelie", "Gentoo"]
    np.testing.assert_array_equal(t.labels, [0, 1, -1, 0])  # the incomplete row is left out
    names = tmp_path / "names.csv"
    names.write_text("kind\nb\n\na\n-1\nb\n")
    got = vio.read_labels(names)
    assert got.classes == ["a", "b"] and got.labels.tolist() == [1, -1, 0, -1, 1]
    ints = tmp_path / "ints.csv"
    ints.write_text("kind\n1\n\n0\n-1\n")
    got = vio.read_labels(ints)
    assert got.classes is None and got.labels.tolist() == [1, -1, 0, -1]
    ints.write_text("kind\n1\n0.5\n")
    with pytest.raises(vio.DataError, match="line 3, column 1: label '0.5' is not an integer"):
        vio.read_labels(ints)
    ints.write_text("kind\n1\n1.0\n-1.0\n2\n")  # numbers, however written
    assert vio.read_labels(ints).labels.tolist() == [1, 1, -1, 2]
    arr = tmp_path / "names.npy"  # an array of strings: the same rules, rows named
    np.save(arr, np.array(["b", "", "a", "-1", "b"]))
    got = vio.read_labels(arr)
    assert got.classes == ["a", "b"] and got.labels.tolist() == [1, -1, 0, -1, 1]
    np.save(arr, np.array(["1", "0.5"]))
    with pytest.raises(vio.DataError, match="row 1, labels: label '0.5' is not an integer"):
        vio.read_labels(arr)
    np.save(arr, np.array([1, -1, 0]))
    assert vio.read_labels(arr).classes is None
    many = tmp_path / "many.csv"  # coded as read: more names than any K stops the reading
    many.write_text("x,kind\n" + "".join(f"{i},name{i}\n" for i in range(5000)))
    with pytest.raises(vio.DataError, match=r"column 2 \('kind'\) holds more than 4096 "
                                            "distinct labels"):
        vio.read_data(many, label_column="kind")


def test_incomplete_rows_are_refused_or_left_out_with_their_places(tmp_path):
    """Without ``drop_incomplete`` a missing cell is an error that names the option; with it
    the row is left out (blank, NA, NaN, N/A, null; NaN in an array) and ``kept`` says which
    rows stay; a table of incomplete rows only is an error."""
    path = tmp_path / "t.csv"
    path.write_text(TABLE)
    with pytest.raises(vio.DataError, match=r"line 3, column 2 \('bill'\): 'NA' is not a "
                                            r"number \(--drop-incomplete"):
        vio.read_data(path, columns=["bill", "mass"])
    t = vio.read_data(path, columns=["bill", "mass"], drop_incomplete=True)
    assert t.kept.tolist() == [True, False, True, True, True] and t.dropped == 1
    assert t.first_dropped == "line 3" and t.X.shape == (4, 2)
    gaps = tmp_path / "gaps.csv"
    gaps.write_text("a,b\nnan,1\n2,N/A\nnull,\n")
    with pytest.raises(vio.DataError, match=r"every row \(3\) has a missing cell"):
        vio.read_data(gaps, drop_incomplete=True)
    gaps.write_text("a,b\n1,\n2,3\nnan,4\n")
    assert vio.read_data(gaps, columns=["a"], drop_incomplete=True).kept.tolist() == [
        True, True, False]  # only the chosen columns' cells count
    with pytest.raises(vio.DataError, match="line 4, column 1 \\('a'\\): non-finite value nan "
                                            ".*--drop-incomplete"):
        vio.read_data(gaps, columns=["a"])
    arr = tmp_path / "a.npy"
    np.save(arr, np.array([[1.0, np.nan], [2.0, 3.0], [4.0, 5.0]]))
    t = vio.read_data(arr, drop_incomplete=True)
    assert t.kept.tolist() == [False, True, True] and t.first_dropped == "row 0"
    np.testing.assert_array_equal(t.X, [[2, 3], [4, 5]])


def test_a_models_columns_are_taken_by_name_from_a_header(tmp_path):
    """``names`` (the columns a model was fitted on) pick DATA's columns by name and in the
    model's order; a header without one of them is an error naming it; without a header
    (or with ``columns`` given) the names are not used."""
    path = tmp_path / "t.csv"
    path.write_text("mass,note,bill\n3750,x,39.1\n4500,y,46.5\n")
    t = vio.read_data(path, names=["bill", "mass"])
    np.testing.assert_array_equal(t.X, [[39.1, 3750], [46.5, 4500]])
    with pytest.raises(vio.DataError, match="no column named 'depth', which the model was "
                                            "fitted on"):
        vio.read_data(path, names=["bill", "depth"])
    np.testing.assert_array_equal(
        vio.read_data(path, names=["bill", "depth"], columns=["0", "2"]).X[:, 0], [3750, 4500])
    bare = tmp_path / "bare.csv"
    bare.write_text("1,2\n3,4\n")
    np.testing.assert_array_equal(vio.read_data(bare, names=["bill", "mass"]).X,
                                  [[1, 2], [3, 4]])
