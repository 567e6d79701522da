"""Property-based tests (Hypothesis) of the host-side pieces: no JAX compilation, fast.

Preprocessing round trips, clustering accuracy under relabelling, the row split of hosts,
the pruning rules' invariants, and the CLI's option parsers.
"""

import argparse
import json
import math
import re

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from vmonf_jax.metrics import cluster_accuracy
from vmonf_jax.parallel import host_rows, host_shard
from vmonf_jax.preprocess import (
    PIXEL_LEVELS,
    SPREAD_FLOOR,
    make_preprocessor,
    preprocessor_from_dict,
)
from vmonf_jax.spec import kinds
from vmonf_jax.train.prune import dead_components, keep_indices, mml_survivors

FAST = settings(max_examples=60, deadline=None)


# -- preprocessing ------------------------------------------------------------------------
def _columns(draw, n, d):
    """(n, d) float64 data, each column at its own location and scale (some constant)."""
    loc = draw(hnp.arrays(np.float64, d, elements=st.floats(-1e4, 1e4)))
    scale = draw(hnp.arrays(np.float64, d, elements=st.sampled_from([0.0, 1e-3, 1.0, 50.0])))
    z = draw(hnp.arrays(np.float64, (n, d), elements=st.floats(-3, 3)))
    return loc + scale * z


@st.composite
def real_data(draw):
    n, d = draw(st.integers(1, 12)), draw(st.integers(1, 4))
    return _columns(draw, n, d)


@FAST
@given(X=real_data())
def test_standardize_round_trip_and_units(X):
    pre = make_preprocessor("standardize").fit(X)
    Y, log_det = pre.transform(X)
    assert Y.dtype == np.float32 and log_det.dtype == np.float32 and Y.shape == X.shape
    assert np.all(pre.scale >= SPREAD_FLOOR * np.maximum(1.0, np.abs(pre.mean)))
    np.testing.assert_allclose(pre.mean, X.mean(0), rtol=1e-12, atol=1e-12)
    wide = X.std(0) >= SPREAD_FLOOR * np.maximum(1.0, np.abs(X.mean(0)))
    np.testing.assert_allclose(pre.scale[wide], X.std(0)[wide], rtol=1e-12)
    # columns that spread: mean 0 and standard deviation 1 after the transform
    if X.shape[0] > 1:
        np.testing.assert_allclose(Y[:, wide].mean(0), 0.0, atol=1e-4)
        np.testing.assert_allclose(Y[:, wide].std(0), 1.0, rtol=1e-3)
    np.testing.assert_allclose(log_det, -np.sum(np.log(pre.scale)), rtol=1e-5, atol=1e-5)
    # inverse(transform(X)) = X within float32 rounding of the standardised values
    tol = 4 * np.finfo(np.float32).eps * (np.abs(X) + pre.scale * (1 + np.abs(Y)))
    back = pre.inverse(Y)
    assert back.dtype == np.float32 and np.all(np.abs(back - X) <= tol + 1e-30)


@FAST
@given(X=real_data(), name=st.sampled_from(["standardize", "none"]))
def test_to_dict_round_trip_through_json(X, name):
    pre = make_preprocessor(name).fit(X)
    d = json.loads(json.dumps(pre.to_dict()))  # what a manifest stores
    back = preprocessor_from_dict(d)
    assert type(back) is type(pre) and back.dim == X.shape[1] and back.to_dict() == d
    for a, b in zip(back.transform(X), pre.transform(X), strict=True):
        np.testing.assert_array_equal(a, b)
    Y = pre.transform(X)[0]
    np.testing.assert_array_equal(back.inverse(Y), pre.inverse(Y))


@FAST
@given(X=real_data())
def test_none_is_the_identity(X):
    pre = make_preprocessor("none").fit(X)
    Y, log_det = pre.transform(X)
    np.testing.assert_array_equal(Y, X.astype(np.float32))
    np.testing.assert_array_equal(log_det, 0.0)
    np.testing.assert_array_equal(pre.inverse(Y), Y)


@st.composite
def pixels(draw):
    n, d = draw(st.integers(1, 8)), draw(st.integers(1, 5))
    return draw(hnp.arrays(np.float64, (n, d), elements=st.floats(0, PIXEL_LEVELS - 1e-3)))


@FAST
@given(X=pixels(), lam=st.sampled_from([1e-6, 0.05]), seed=st.integers(0, 2**16))
def test_logit_pixels_round_trip(X, lam, seed):
    pre = make_preprocessor("logit-pixels")
    pre.lam = lam
    pre.fit(X)
    # scoring: the pixel's midpoint; its level comes back with floor
    Y, log_det = pre.transform(X)
    v = pre.inverse(Y).astype(np.float64)
    np.testing.assert_allclose(v, np.floor(X) + 0.5, atol=2e-3)
    np.testing.assert_array_equal(np.floor(v), np.floor(X))
    # training: dequantised within the pixel's level; log_det of v -> logit(y)
    Yr, log_det_r = pre.transform(X, rng=seed)
    np.testing.assert_array_equal(pre.transform(X, rng=seed)[0], Yr)  # the seed decides
    vr = pre.inverse(Yr).astype(np.float64)
    assert np.all((vr >= np.floor(X) - 1e-3) & (vr < np.floor(X) + 1 + 1e-3))
    if X.size > 1:  # fresh noise for every value, not one draw for all
        assert len(np.unique(np.round(vr - np.floor(X), 4))) > 1
    y = lam + (1 - 2 * lam) * vr / PIXEL_LEVELS
    want = np.sum(np.log((1 - 2 * lam) / PIXEL_LEVELS) - np.log(y) - np.log1p(-y), axis=1)
    np.testing.assert_allclose(log_det_r, want, rtol=1e-4, atol=1e-3)
    assert preprocessor_from_dict(json.loads(json.dumps(pre.to_dict()))).lam == lam


# -- clustering accuracy ------------------------------------------------------------------
@st.composite
def labellings(draw):
    n = draw(st.integers(1, 40))
    k = draw(st.integers(1, 5))
    y_true = draw(hnp.arrays(np.int64, n, elements=st.integers(0, k - 1)))
    y_pred = draw(hnp.arrays(np.int64, n, elements=st.integers(0, k - 1)))
    perm = draw(st.permutations(range(k)))
    return y_true, y_pred, np.asarray(perm)


@FAST
@given(data=labellings())
def test_cluster_accuracy_is_blind_to_the_names_of_clusters(data):
    y_true, y_pred, perm = data
    acc = cluster_accuracy(y_true, y_pred)
    assert 0.0 < acc <= 1.0
    assert cluster_accuracy(y_true, perm[y_pred]) == pytest.approx(acc)
    assert cluster_accuracy(perm[y_true], y_pred) == pytest.approx(acc)
    assert cluster_accuracy(y_true, perm[y_true]) == 1.0  # a relabelling is a perfect score
    assert acc >= np.mean(y_true == y_pred) - 1e-12  # the identity matching is one candidate
    # the largest class per cluster bounds it from above (the matching is one-to-one)
    upper = sum(np.bincount(y_true[y_pred == c]).max() for c in np.unique(y_pred))
    assert acc <= upper / len(y_true) + 1e-12


# -- rows of hosts ------------------------------------------------------------------------
@FAST
@given(n=st.integers(0, 500), hosts=st.integers(1, 9))
def test_host_rows_split_every_row_once_in_order(n, hosts):
    parts = [host_rows(n, i, hosts) for i in range(hosts)]
    rows = np.concatenate([np.arange(n)[p] for p in parts])
    np.testing.assert_array_equal(rows, np.arange(n))
    sizes = [p.stop - p.start for p in parts]
    assert max(sizes) - min(sizes) <= 1 and sizes == sorted(sizes, reverse=True)
    x = np.arange(2 * n).reshape(n, 2)
    np.testing.assert_array_equal(np.concatenate([host_shard(x, i, hosts)
                                                  for i in range(hosts)]), x)


@given(n=st.integers(0, 50), hosts=st.integers(1, 5), i=st.integers(-3, 10))
def test_host_rows_refuses_a_process_outside_the_job(n, hosts, i):
    assume(not 0 <= i < hosts)
    with pytest.raises(ValueError, match=rf"process_index {i} is outside \[0, {hosts}\)"):
        host_rows(n, i, hosts)


# -- pruning rules ------------------------------------------------------------------------
@st.composite
def weights(draw):
    r, k = draw(st.integers(1, 3)), draw(st.integers(1, 6))
    w = draw(hnp.arrays(np.float64, (r, k), elements=st.floats(1e-6, 1.0)))
    protect = draw(st.integers(0, k))
    threshold = draw(st.sampled_from([0.0, 0.01, 0.1, 0.3, 1.1]))
    alive = draw(st.none() | hnp.arrays(bool, (r, k)))
    return np.log(w / w.sum(1, keepdims=True)), threshold, protect, alive


@FAST
@given(case=weights())
def test_keep_indices_keeps_the_heaviest_and_the_labelled(case):
    log_pi, threshold, protect, alive = case
    idx = keep_indices(log_pi, threshold, protect, alive)
    r, k_all = log_pi.shape
    pi = np.exp(log_pi)
    ok = pi >= threshold if alive is None else (pi >= threshold) & alive
    ok[:, :protect] = True  # labelled classes count as survivors
    k = idx.shape[1]
    assert idx.shape[0] == r and k == max(1, int(ok.sum(1).max()))
    for row, kept in zip(range(r), idx):
        assert np.all(np.diff(kept) > 0) and 0 <= kept.min() and kept.max() < k_all
        assert set(range(protect)) <= set(kept.tolist())  # labelled classes keep their index
        dropped = np.setdiff1d(np.arange(k_all), kept)
        if len(dropped):  # each kept unprotected component outranks every dropped one
            rank = np.where(ok[row] if alive is not None else True, pi[row], -1.0)
            free = kept[kept >= protect]
            if len(free):
                assert rank[free].min() >= rank[dropped].max()


@st.composite
def responsibilities(draw):
    n, k = draw(st.integers(1, 30)), draw(st.integers(1, 5))
    q = draw(hnp.arrays(np.float64, (n, k), elements=st.floats(0, 1)))
    q = q + 1e-3
    return q / q.sum(1, keepdims=True), draw(st.floats(0, 10)), draw(st.integers(0, k))


@FAST
@given(case=responsibilities())
def test_mml_survivors_invariants(case):
    q, min_rows, protect = case
    alive = mml_survivors(q, min_rows, protect)
    assert alive.shape == (q.shape[1],) and alive.dtype == bool
    assert alive.sum() >= max(1, min(protect, q.shape[1]))
    assert np.all(alive[:protect])
    # the survivors, with the rows of the removed renormalised over them, either all hold
    # min_rows, or the weakest is one that may not go (protected, or the last one)
    w = np.where(alive, q + 1e-30, 0.0)
    rows = (w / w.sum(1, keepdims=True)).sum(0)
    free = alive.copy()
    free[:protect] = False
    if alive.sum() > max(1, protect) and free.any():
        assert rows[free].min() >= min_rows - 1e-9
    # a bar of zero rows removes nothing
    assert mml_survivors(q, 0.0, protect).all()


@given(usage=hnp.arrays(np.float64, st.integers(1, 8), elements=st.floats(0, 1)))
def test_dead_components_are_those_below_a_tenth_of_uniform(usage):
    dead = dead_components(usage)
    assert dead == [k for k, u in enumerate(usage) if u < 0.1 / len(usage)]
    assert dead_components(None) == []


# -- parameter kinds: what the CLI parses and the manifest checks ------------------------
@given(v=st.integers(-10**6, 10**6), lo=st.integers(-5, 5), span=st.none() | st.integers(0, 50))
def test_int_accepts_exactly_its_range(v, lo, span):
    hi = None if span is None else lo + span
    kind = kinds.Int(lo, hi)
    if lo <= v and (hi is None or v <= hi):
        assert kind.parse(str(v)) == v and kind.parse(f" {v} ") == v and kind.check(v) is None
    else:
        with pytest.raises(argparse.ArgumentTypeError, match=f"must be .*, got {v}$"):
            kind.parse(str(v))
        assert kind.check(v).endswith(f"got {v}")


@given(text=st.text(max_size=6))
def test_int_refuses_what_is_not_an_integer(text):
    try:
        int(text)
    except ValueError:
        with pytest.raises(argparse.ArgumentTypeError, match="is not an integer"):
            kinds.Int(0).parse(text)


@given(v=st.floats(allow_nan=True, allow_infinity=True))
def test_real_parses_finite_numbers_only(v):
    kind = kinds.Real(0)
    if not math.isfinite(v):
        with pytest.raises(argparse.ArgumentTypeError, match="must be a finite number"):
            kind.parse(repr(v))
    elif v < 0:
        with pytest.raises(argparse.ArgumentTypeError, match=">= 0"):
            kind.parse(repr(v))
    else:
        assert kind.parse(repr(v)) == v and kind.check(v) is None


@given(v=st.floats(-2, 3), open_lo=st.booleans(), open_hi=st.booleans())
def test_real_bounds_open_and_closed(v, open_lo, open_hi):
    kind = kinds.Real(0, 1, open_lo=open_lo, open_hi=open_hi)
    inside = (v > 0 if open_lo else v >= 0) and (v < 1 if open_hi else v <= 1)
    assert (kind.check(v) is None) == inside


@given(layers=st.lists(st.integers(-3, 10**5), min_size=1, max_size=10),
       pad=st.sampled_from(["", " "]))
def test_sizes_round_trip(layers, pad):
    text = ",".join(f"{pad}{s}{pad}" for s in layers)
    kind = kinds.Sizes(layers=8, width=65536)
    if any(s < 1 for s in layers):
        with pytest.raises(argparse.ArgumentTypeError, match="layer sizes must be positive"):
            kind.parse(text)
    elif len(layers) > 8 or max(layers) > 65536:
        with pytest.raises(argparse.ArgumentTypeError, match="must be a list of 1 to 8"):
            kind.parse(text)
    else:
        assert kind.parse(text) == tuple(layers) and kind.check(list(layers)) is None


@given(text=st.sampled_from(["none", "None", " NONE "]) | st.integers(1, 99).map(str))
def test_optional(text):
    kind = kinds.Optional(kinds.Int(1))
    assert kind.parse(text) == (None if text.strip().lower() == "none" else int(text))
    assert kind.check(None) is None


# -- preprocessing: refusals, by message ----------------------------------------------------
@pytest.mark.parametrize("name", ["standardize", "none", "logit-pixels"])
def test_preprocessors_refuse_bad_input_by_name(name):
    pre = make_preprocessor(name)
    cls = type(pre).__name__
    with pytest.raises(ValueError, match=f"{cls} is not fitted; call fit"):
        pre.transform(np.ones((2, 2)))
    for shape in ((0, 2), (2, 0), (4,)):
        with pytest.raises(ValueError, match=rf"expected a non-empty 2-D array \(n, D\), got "
                                             rf"shape {re.escape(str(shape))}"):
            pre.fit(np.ones(shape))
    with pytest.raises(ValueError, match="data contain NaN or infinite values"):
        pre.fit(np.array([[1.0, np.inf]]))
    pre.fit(np.ones((3, 2)))
    with pytest.raises(ValueError, match="expected 2 columns, got 3"):
        pre.transform(np.ones((3, 3)))
    other = "none" if name != "none" else "standardize"
    d = {**pre.to_dict(), "name": other}
    with pytest.raises(ValueError, match=f"expected a '{name}' preprocessor dict, got '{other}'"):
        type(pre).from_dict(d)
    for dim in (0, True, 1.0, None):
        with pytest.raises(ValueError, match=f"dim must be a positive integer, got {dim!r}"):
            type(pre).from_dict({**pre.to_dict(), "dim": dim})


def test_logit_pixels_lambda_bounds():
    from vmonf_jax.preprocess import LogitPixels

    for lam in (0.5, -1e-9, "0.1"):
        with pytest.raises(ValueError, match=r"lam must be in \[0, 0.5\)"):
            LogitPixels(lam)
    assert LogitPixels(0.0).lam == 0.0
    assert make_preprocessor("standardize").to_dict() == {
        "name": "standardize", "dim": None, "mean": None, "scale": None, "dequantized": [],
        "steps": [],
        "options": {"dequantize": False}}


# -- the training driver's host-side helpers ------------------------------------------------
@given(n=st.integers(1, 2000), most=st.integers(1, 300))
def test_chunks_cover_the_epochs_in_the_fewest_calls(n, most):
    from vmonf_jax.train.prepare import chunk_length as _chunk_length

    length = _chunk_length(n, most)
    calls = -(-n // length)
    assert 1 <= length <= most
    assert calls == -(-n // most)  # no more compiled calls than chunks of `most` need
    assert calls * length - n < calls  # evened out: the last call wastes under one per call


@st.composite
def clusterings(draw):
    k = draw(st.integers(1, 5))
    n = draw(st.integers(1, 40))
    clusters = draw(hnp.arrays(np.int32, n, elements=st.integers(0, k - 1)))
    labels = draw(hnp.arrays(np.int32, n, elements=st.integers(-1, k - 1)))
    return clusters, labels, k


@FAST
@given(case=clusterings(), perm_seed=st.integers(0, 100))
def test_warm_start_clusters_are_renamed_to_the_labels(case, perm_seed):
    from vmonf_jax.train.prepare import matched_to_labels as _matched_to_labels

    clusters, labels, k = case
    out = _matched_to_labels(clusters, labels, k)
    known = labels >= 0
    assert out.dtype == np.int32 and out.shape == labels.shape
    np.testing.assert_array_equal(out[known], labels[known])  # labelled rows keep theirs
    # unlabelled rows: one renaming of the clusters, a permutation of 0..k-1
    rename = {}
    for c, o in zip(clusters[~known], out[~known]):
        assert rename.setdefault(int(c), int(o)) == int(o)
    assert len(set(rename.values())) == len(rename)
    # clusters that are renamed copies of the labels are renamed back to them
    perm = np.random.default_rng(perm_seed).permutation(k)
    if known.any():
        truth = np.where(known, labels, 0)
        assert np.array_equal(_matched_to_labels(perm[truth], labels, k)[known], labels[known])
        full = np.arange(len(labels)) % k  # every class labelled at least once if n >= k
        if len(labels) >= k:
            np.testing.assert_array_equal(_matched_to_labels(perm[full], full, k), full)
            partly = np.where(np.arange(len(full)) < k, full, -1)
            np.testing.assert_array_equal(_matched_to_labels(perm[full], partly, k), full)


@given(n=st.sampled_from([2, 7, 40]), fraction=st.sampled_from([0.0, 0.1, 0.25, 0.5]),
       seed=st.integers(0, 50))
@settings(max_examples=12, deadline=None)
def test_validation_split_is_a_partition(n, fraction, seed):
    import jax

    from vmonf_jax.train.prepare import split as _split

    x = np.arange(2.0 * n).reshape(n, 2)
    labels = np.arange(n) % 3 - 1
    tr, lab, val = _split(x, labels, fraction, jax.random.key(seed))
    if not fraction:
        assert tr is x and lab is labels and val is None
        return
    assert len(val) == max(1, round(fraction * n)) and len(tr) + len(val) == n
    np.testing.assert_array_equal(np.sort(np.concatenate([tr[:, 0], val[:, 0]])), x[:, 0])
    np.testing.assert_array_equal(lab, labels[(tr[:, 0] // 2).astype(int)])  # rows keep labels
    again = _split(x, None, fraction, jax.random.key(seed))  # unlabelled: the same rows
    assert again[1] is None
    np.testing.assert_array_equal(again[0], tr)
    np.testing.assert_array_equal(again[2], val)  # the key decides
