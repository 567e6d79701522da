"""Do the default fit's restarts pay for their cost (issue 22's cold-fit bar)?

The default pinwheel fit of ``benchmarks/flowjax_side.py`` (the paper's component size,
batch 512, 400 epochs, every other parameter at its default or as ``--params`` sets it)
with ``n_init`` = 1 and 3, on seeds 0-4: held-out log-likelihood per row (the test rows of
another draw, standardised with the training rows' statistics), ARI against the wings, fit
wall time and epochs run. ``--flowjax``: also flowjax's ``fit_to_data`` of the same size
(400 epochs, best validation parameters) on the same training rows, 15% of them held out
for its validation as ours holds out, scored on the same test rows.

Usage: python studies/restarts_cost.py [--seeds 0 1 2 3 4] [--n-init 1 3] [--params JSON]
       [--flowjax] [--out F.json]
"""

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
from sklearn.metrics import adjusted_rand_score

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import flowjax_side as fs  # noqa: E402


def rows(cfg: dict, seed: int):
    """Training rows, test rows and test labels of ``seed`` (the training draw's units)."""
    return fs.train_test_points(cfg, seed, 1000 + seed)


def one(seed: int, n_init: int, params: dict) -> dict:
    cfg = fs.config(False)
    x, xt, yt = rows(cfg, seed)
    t = time.perf_counter()
    m = fs.estimator(cfg, 5, epochs=cfg["epochs"], n_init=n_init, seed=seed, **params).fit(x)
    fit_s = time.perf_counter() - t
    return {"seed": seed, "n_init": n_init, "params": params, "fit_s": round(fit_s, 2),
            "epochs_run": len(m.history_), "test_loglik": float(m.score(xt)),
            "ari": float(adjusted_rand_score(yt, m.predict(xt)))}


def flowjax_one(seed: int) -> dict:
    """flowjax's ``fit_to_data`` on the rows of ``seed`` (its validation: 15% of them)."""
    import jax
    from flowjax.train import fit_to_data

    cfg = fs.config(False)
    x, xt, _ = rows(cfg, seed)
    t = time.perf_counter()
    fitted, losses = fit_to_data(jax.random.key(seed), fs.flowjax_mixture(cfg, 5, seed=seed),
                                 x, learning_rate=cfg["learning_rate"],
                                 max_epochs=cfg["epochs"], max_patience=cfg["epochs"],
                                 batch_size=cfg["batch_size"], val_prop=0.15,
                                 show_progress=False)
    return {"seed": seed, "flowjax": True, "fit_s": round(time.perf_counter() - t, 2),
            "epochs_run": len(losses["train"]),
            "test_loglik": float(np.mean(fitted.log_prob(xt)))}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    p.add_argument("--n-init", type=int, nargs="+", default=[1, 3])
    p.add_argument("--params", type=json.loads, default={},
                   help="JSON object of further VMoNF parameters, e.g. '{\"objective\": "
                        "\"marginal\"}'")
    p.add_argument("--flowjax", action="store_true", help="also flowjax's fit per seed")
    p.add_argument("--out", type=Path)
    args = p.parse_args()
    done = []
    for seed in args.seeds:
        for n in [*args.n_init, *(["flowjax"] if args.flowjax else [])]:
            done.append(flowjax_one(seed) if n == "flowjax" else one(seed, n, args.params))
            print(json.dumps(done[-1]), flush=True)
            if args.out:
                args.out.parent.mkdir(parents=True, exist_ok=True)
                args.out.write_text(json.dumps(done, indent=1))


if __name__ == "__main__":
    main()
