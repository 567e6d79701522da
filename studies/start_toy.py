"""One fit of the README's pinwheel (or circles) settings with extra ``VMoNF`` parameters.

Compares starts and early stopping on the toy targets with the library's defaults for
everything not named: prints the held-out log-likelihood, ARI (and, for the circles, the
matched accuracy) and the wall time.

Usage: python studies/start_toy.py pinwheel '{"init": "kmeans"}' SEED
"""

import json
import sys
import time

import numpy as np
from sklearn.metrics import adjusted_rand_score

from vmonf_jax import VMoNF
from vmonf_jax.data import pinwheel, train_test, two_circles

SETTINGS = {
    "pinwheel": (pinwheel, dict(n_components=5, n_blocks=8, hidden=(8,), posterior_hidden=(16,),
                                epochs=400, batch_size=512)),
    "circles": (two_circles, dict(n_components=2, n_blocks=10, hidden=(8,),
                                  posterior_hidden=(16, 16), epochs=500, batch_size=128)),
}


def main(name, extra, seed):
    gen, base = SETTINGS[name]
    (x, _), (xt, yt) = train_test(gen, seed=seed)
    t = time.time()
    m = VMoNF(**base, seed=seed, verbose=False, **extra).fit(x)
    pred = m.predict(xt)
    acc = max(np.mean(pred == yt), np.mean(pred != yt)) if name == "circles" else None
    print(name, extra, seed, "loglik", round(m.score(xt), 4), "ari",
          round(adjusted_rand_score(yt, pred), 4), "acc", acc, "s", round(time.time() - t),
          flush=True)


if __name__ == "__main__":
    main(sys.argv[1], json.loads(sys.argv[2]), int(sys.argv[3]))
