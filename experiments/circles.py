"""make circles: two concentric circles, unsupervised, K=2 RealNVP (the paper's Figure 7).

1,024 training points (radius ratio 0.5, noise 0.05) and an independent test draw; K=2
RealNVP (10 blocks, hidden 8), posterior 2x16, batch 128, 500 epochs. The paper reports that
the two components split the plane into halves. Each seed fits the library's defaults with
the consistency regulariser at weight 1 and, beside it, the paper's objective (``consistency=0``):
metrics.json's ``paper_objective`` entry and comparison.png (both fits side by side).
"""

from harness import cli
from vmonf_jax.data import two_circles

PAPER = dict(n_components=2, flow="realnvp", n_blocks=10, hidden=(8,),
             posterior_hidden=(16, 16), batch_size=128, learning_rate=1e-3, epochs=500,
             consistency=1.0)  # the README's runs (the library's "auto" gives 1 here too)
QUICK = dict(n_blocks=2, hidden=(4,), posterior_hidden=(4,), epochs=2, warm_epochs=1, n_init=1,
             batch_size=64)
DATA = dict(n=1024, factor=0.5, noise=0.05)


def main(argv=None):
    return cli.toy_main("circles", __doc__, two_circles, DATA, {"n": 128}, PAPER, QUICK,
                        gmm_sweep=(2, 10, 20, 50),
                        compare={"paper_objective": {"consistency": 0.0}}, argv=argv)


if __name__ == "__main__":
    main()
