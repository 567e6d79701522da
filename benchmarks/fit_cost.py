"""Cost of one cold ``VMoNF.fit`` (compile included) on pinwheel, and its held-out ARI.

The issue-11 configuration: ``VMoNF(n_components=5, n_blocks=8, hidden=(8,),
posterior_hidden=(3,), epochs=400, batch_size=512)`` on 2,560 pinwheel points; ARI and mean
log-likelihood on an independent draw (``toy.train_test``). Run each setting in a fresh
process (cold), e.g. against an older checkout with ``PYTHONPATH=/path/to/old/src``::

    python benchmarks/fit_cost.py --n-init 3 --seed 0

Prints one JSON line: n_init, seed, wall_s and cpu_s (of the fit call: on a shared
machine, process CPU seconds vary less than wall time), ari, test_loglik.
"""

import argparse
import json
import time


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--n-init", type=int, default=3)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)

    from sklearn.metrics import adjusted_rand_score

    from vmonf_jax import VMoNF
    from vmonf_jax.data import toy

    (x, _), (x_test, y_test) = toy.train_test(toy.pinwheel, seed=args.seed)
    model = VMoNF(n_components=5, n_blocks=8, hidden=(8,), posterior_hidden=(3,), epochs=400,
                  batch_size=512, n_init=args.n_init, seed=args.seed, verbose=False)
    t0, c0 = time.perf_counter(), time.process_time()
    model.fit(x)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    print(json.dumps({"n_init": args.n_init, "seed": args.seed, "wall_s": round(wall, 2),
                      "cpu_s": round(cpu, 2),
                      "ari": round(float(adjusted_rand_score(y_test, model.predict(x_test))), 4),
                      "test_loglik": round(float(model.score(x_test)), 4)}))


if __name__ == "__main__":
    main()
