"""make circles: two concentric circles, unsupervised, K=2 RealNVP (the paper's Figure 7).

1,024 training points (radius ratio 0.5, noise 0.05) and an independent test draw; K=2
RealNVP (10 blocks, hidden 8), posterior 2x16, batch 128, 500 epochs. The paper reports that
the two components split the plane into halves; the figures show what this fit does.
"""

import common

from vmonf_jax.data import train_test, two_circles
from vmonf_jax.report import run_experiment

PAPER = dict(n_components=2, flow="realnvp", n_blocks=10, hidden=(8,),
             posterior_hidden=(16, 16), batch_size=128, learning_rate=1e-3, epochs=500)
QUICK = dict(n_blocks=2, hidden=(4,), posterior_hidden=(4,), epochs=2, warm_epochs=1, n_init=1,
             batch_size=64)
DATA = dict(n=1024, factor=0.5, noise=0.05)


def main(argv=None):
    args = common.parse(common.parser("circles", __doc__), argv)
    data = {**DATA, "n": 128} if args.quick else DATA

    def run(seed, outdir):
        train, test = train_test(two_circles, seed=seed, **data)
        model = common.estimator(args, PAPER, QUICK, seed)
        return run_experiment("circles", model, train, test, outdir, data=data,
                              single_flow=not args.no_single_flow, gmm_sweep=(2, 10, 20, 50))

    return common.run_seeds(args, "circles", run)


if __name__ == "__main__":
    main()
