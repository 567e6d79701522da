"""Are a data set's classes a mixture the likelihood can find (issue 21's accuracy misses)?

For each split (``realdata_sets.split``) it scores on the held-out 30 %:

* ``class_gaussians``: one full-covariance Gaussian per class, fitted to that class's
  training rows, weighted by the class shares (the mixture whose components are the
  classes, with Gaussian components), and its accuracy (argmax of the joint: QDA);
* ``class_flows``: one ``VMoNF(n_components=1)`` per class (the defaults), weighted by the
  class shares: a mixture of flows whose components are the classes, and its accuracy;
* ``gmm``: scikit-learn's full-covariance ``GaussianMixture`` with K = the classes;
* ``vmonf``: ``VMoNF(n_components=K)`` with the defaults (``--params`` adds parameters).

Where ``class_flows`` scores as high as ``vmonf`` held out, the classes are as good a
density as what the unsupervised fit found, and a start that finds them costs nothing;
where it scores lower, no choice by likelihood recovers the classes.

Usage: python studies/class_components.py DATASET [--splits 0,1,2] [--params JSON]
Prints one JSON line per split (log-likelihoods per row in the data's units).
"""

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from scipy.special import logsumexp
from scipy.stats import multivariate_normal
from sklearn.mixture import GaussianMixture

from vmonf_jax import VMoNF

sys.path.insert(0, str(Path(__file__).resolve().parent))
from realdata_sets import load, split  # noqa: E402


def _joint(columns):
    """Held-out mean log-likelihood and accuracy of a mixture given its (n, K) joint."""
    joint = np.stack(columns, 1)
    return float(np.mean(logsumexp(joint, 1))), joint.argmax(1)


def one_split(X, y, seed, params):
    X_train, X_test, y_train, y_test = split(X, y, seed)
    k = len(np.unique(y))
    share = [np.log(np.mean(y_train == c)) for c in range(k)]
    reg = 1e-6 * np.mean(X_train.var(0))
    gauss = [share[c] + multivariate_normal(
        X_train[y_train == c].mean(0), np.cov(X_train[y_train == c].T) + reg * np.eye(X.shape[1]),
        allow_singular=True).logpdf(X_test) for c in range(k)]
    flows = [share[c] + VMoNF(n_components=1, seed=seed, verbose=False, **params)
             .fit(X_train[y_train == c]).score_samples(X_test) for c in range(k)]
    gmm = GaussianMixture(k, covariance_type="full", random_state=seed, reg_covar=1e-6,
                          max_iter=500).fit(X_train)
    model = VMoNF(n_components=k, seed=seed, verbose=False, **params).fit(X_train)
    (g_ll, g_pred), (f_ll, f_pred) = _joint(gauss), _joint(flows)
    return {"split": seed, "class_gaussians": round(g_ll, 4),
            "class_gaussians_acc": round(float(np.mean(g_pred == y_test)), 4),
            "class_flows": round(f_ll, 4),
            "class_flows_acc": round(float(np.mean(f_pred == y_test)), 4),
            "gmm": round(float(gmm.score(X_test)), 4),
            "vmonf": round(float(np.mean(model.score_samples(X_test))), 4)}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("dataset")
    p.add_argument("--splits", default="0,1,2")
    p.add_argument("--params", type=json.loads, default={})
    args = p.parse_args(argv)
    X, y, _ = load(args.dataset)
    for seed in (int(s) for s in args.splits.split(",")):
        print(json.dumps({"dataset": args.dataset, **one_split(X, y, seed, args.params)}),
              flush=True)


if __name__ == "__main__":
    main()
