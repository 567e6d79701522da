"""Automatic K with the default estimator (issue 21, item 6): which K does prior="sparse" keep?

Fits ``VMoNF(n_components=K_MAX, prior="sparse", seed=seed, verbose=False, **--params)``
(``--params`` may override any of them: ``'{"n_components": 5, "prior": "uniform"}'`` fits
the known K), every other parameter at its default, and records per seed the K kept
(``n_components_``), the held-out mean log-likelihood (nats per row), the held-out ARI, the
fit's wall time and a trace of K and the validation log-likelihood over the main epochs.

Data (``DATA``):

* ``pinwheel``: ``train_test(pinwheel, seed)`` (5 wings, 512 points each, an independent test
  draw of the same size), K_MAX = 10.
* ``blobs``: ``make_blobs(600, centers=[(0, 0), (6, 0), (3, 5.2)], cluster_std=1.0,
  random_state=seed)`` (three blobs 6 standard deviations apart, as docs/results.md's
  "Automatic K"), a test draw of the same size with ``random_state=1000 + seed``; K_MAX = 8.

With ``--pairs``, no fit: the evidence behind ``train.merge.MERGE_ENTROPY``. The Gaussian
start's EM at K_MAX (``gaussian_start.fit_gaussians`` from k-means, on the standardised
training rows) and, per seed, the largest entropy drop (``merge.entropy_drops``) between two
components of different true clusters (each component's cluster: the majority of the rows
it is most probable for), and the weakest link that joins each true cluster's components
(the smallest edge of the maximum spanning tree of their drops): a threshold between the
two merges exactly the true clusters.

Usage: python studies/autok.py pinwheel --seeds 0,1 [--params '{"posterior_hidden": [3]}']
    [--out results/autok/pinwheel.json] [--pairs]
Prints one JSON line per fit (or seed) and rewrites the JSON (``{"data", "params", "fits":
[...]}``) after each one.
"""

import argparse
import json
import time
from pathlib import Path

import numpy as np
from sklearn.datasets import make_blobs
from sklearn.metrics import adjusted_rand_score

from vmonf_jax import VMoNF
from vmonf_jax.data import pinwheel, train_test

CENTERS = [(0.0, 0.0), (6.0, 0.0), (3.0, 5.2)]


def _blobs(seed):
    return (make_blobs(600, centers=CENTERS, cluster_std=1.0, random_state=seed),
            make_blobs(600, centers=CENTERS, cluster_std=1.0, random_state=1000 + seed))


DATA = {"pinwheel": (lambda seed: train_test(pinwheel, seed=seed), 10, 5),
        "blobs": (_blobs, 8, 3)}


def one_fit(name, seed, params) -> dict:
    """Fit seed ``seed`` of data ``name``; the K kept, held-out scores and wall time."""
    draw, k_max, k_true = DATA[name]
    (x, _), (xt, yt) = draw(seed)
    t = time.time()
    model = VMoNF(**{"n_components": k_max, "prior": "sparse", "seed": seed,
                     "verbose": False, **params}).fit(x)
    wall = time.time() - t
    return {"data": name, "seed": seed, "k_max": k_max, "k_true": k_true,
            "k": int(model.n_components_), "usage": np.round(model.usage_, 4).tolist(),
            "test_loglik": float(model.score(xt)),
            "test_ari": float(adjusted_rand_score(yt, model.predict(xt))),
            "wall_s": round(wall, 1), "trace": _trace(model)}


def _trace(model) -> list:
    """[epoch, K, validation log-lik] of the kept restart's main epochs, every 5th."""
    main = [e for e in model.history_
            if e["restart"] == model.best_restart_ and e["phase"] == "main"]
    return [[e["epoch"], len(e["usage"]), round(e.get("val_loglik", float("nan")), 3)]
            for e in main[::5]]


def pairs(name, seed) -> dict:
    """``--pairs``: the largest drop across true clusters and the weakest within one."""
    from scipy.sparse.csgraph import minimum_spanning_tree

    from vmonf_jax.train import gaussian_start, merge
    from vmonf_jax.train.step import kmeans_labels

    draw, k_max, _ = DATA[name]
    (x, y), _ = draw(seed)
    x = (x - x.mean(0)) / x.std(0)
    means, covs, weights, *_ = gaussian_start.fit_gaussians(
        x, kmeans_labels(x, k_max, seed), k_max, seed)
    resp = merge.responsibilities(x, means, covs, weights)
    drop = merge.entropy_drops(resp.T)
    cluster = np.array([np.bincount(y[resp.argmax(1) == k], minlength=y.max() + 1).argmax()
                        for k in range(k_max)])
    across = max(drop[a, b] for a in range(k_max) for b in range(k_max)
                 if cluster[a] != cluster[b])
    within = []
    for c in np.unique(cluster):
        ks = np.flatnonzero(cluster == c)
        if len(ks) > 1:  # the maximum spanning tree's weakest edge
            tree = minimum_spanning_tree(-np.maximum(drop[np.ix_(ks, ks)], 1e-12)).toarray()
            within.append(-tree[tree != 0].max())
    return {"data": name, "seed": seed, "k_max": k_max, "max_across": round(float(across), 4),
            "min_within": round(float(min(within)), 4) if within else None}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("data", choices=sorted(DATA))
    ap.add_argument("--seeds", default="0,1,2,3,4")
    ap.add_argument("--params", default="{}", help="extra VMoNF parameters (JSON)")
    ap.add_argument("--out", default=None, help="default: results/autok/<data>.json")
    ap.add_argument("--pairs", action="store_true", help="the merge threshold's evidence")
    args = ap.parse_args(argv)
    params = json.loads(args.params)
    out = Path(args.out or f"results/autok/{args.data}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    fits = []
    for seed in (int(s) for s in args.seeds.split(",")):
        fits.append(pairs(args.data, seed) if args.pairs else one_fit(args.data, seed, params))
        print(json.dumps(fits[-1]), flush=True)
        out.write_text(json.dumps({"data": args.data, "params": params, "fits": fits},
                                  indent=1))


if __name__ == "__main__":
    main()
