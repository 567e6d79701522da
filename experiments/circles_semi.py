"""make circles-semi: two circles, semi-supervised, K=2 RealNVP (the paper's Figure 8).

1,024 unlabelled points plus 64 labelled ones (32 per circle), radius ratio 0.5, noise 0.05;
the architecture of ``make circles``; 300 pre-training epochs on the labelled points, then
500 epochs mixing both kinds in every step (``--semi joint``, the library's default) or
alternating unsupervised and supervised ones (``--semi paper``, the paper's schedule).
Accuracy: predictions mapped through the labelled classes, against the true circle of
independent test points.
"""

from circles import PAPER as CIRCLES
from circles import QUICK as CIRCLES_QUICK
from harness import cli
from harness.run import run_experiment
from vmonf_jax.data import semi_supervised_labels, train_test, two_circles

PAPER = dict(CIRCLES, pretrain_epochs=300, semi_supervised="joint")
QUICK = dict(CIRCLES_QUICK, pretrain_epochs=2)
N_UNLABELLED, N_PER_CLASS = 1024, 32
DATA = dict(n=N_UNLABELLED + 2 * N_PER_CLASS, factor=0.5, noise=0.05)


def main(argv=None):
    p = cli.parser("circles-semi", __doc__)
    p.add_argument("--semi", choices=("joint", "paper"), default="joint",
                   help="joint (default): both kinds in every step; paper: alternate "
                        "unsupervised and supervised epochs")
    args = cli.parse(p, argv)
    data = {**DATA, "n": 128 + 2 * N_PER_CLASS} if args.quick else DATA

    def run(seed, outdir):
        train, test = train_test(two_circles, seed=seed, **data)
        labels = semi_supervised_labels(train[1], N_PER_CLASS, seed=seed)
        model = cli.estimator(args, PAPER, QUICK, seed).set_params(
            semi_supervised=args.semi)
        return run_experiment("circles-semi", model, train, test, outdir, labels=labels,
                              data={**data, "labelled_per_class": N_PER_CLASS,
                                    "semi_supervised": args.semi},
                              single_flow=not args.no_single_flow, gmm_sweep=(2, 10, 20, 50))

    return cli.run_seeds(args, "circles-semi", run)


if __name__ == "__main__":
    main()
