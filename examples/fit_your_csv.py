"""Fit VMoNF to your own CSV: clusters, density, samples, save and load.

    python examples/fit_your_csv.py                  # writes iris_petals.csv, fits it
    python examples/fit_your_csv.py my.csv --components 4 --epochs 300

Without a CSV it writes ``iris_petals.csv``: the petal length and width (cm) of the 150
flowers of Fisher's iris data (bundled with scikit-learn, no download), three species.
Any numeric CSV works (a header row is optional); the figures are drawn for 2 columns.
``--epochs`` (or the environment variable ``VMONF_EXAMPLE_EPOCHS``) sets the budget; the
test suite runs this script with a tiny one.

Outputs, under ``--out`` (default ``fit_your_csv_out/``): ``clusters.png`` (regions of
argmax p(k|x) with samples), ``density.png`` (log p(x) in nats), ``curves.png`` (training
curves, restarts on one epoch axis), ``samples.csv`` and the saved model ``model/``.
"""

import argparse
import os
import sys

import numpy as np

from vmonf_jax import VMoNF, plotting
from vmonf_jax.files import io


def example_csv(path):
    """Write Fisher's iris petal measurements (cm) to ``path``; return the species."""
    from sklearn.datasets import load_iris

    iris = load_iris()
    petals = iris.data[:, 2:4]  # petal length, petal width
    np.savetxt(path, petals, delimiter=",", fmt="%.1f", header="petal_length_cm,petal_width_cm",
               comments="")
    return iris.target


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("csv", nargs="?", help="your data (default: write iris_petals.csv)")
    parser.add_argument("--components", type=int, default=3, help="K (default 3)")
    parser.add_argument("--epochs", type=int,
                        default=int(os.environ.get("VMONF_EXAMPLE_EPOCHS", 150)),
                        help="ELBO epochs (default 150, or $VMONF_EXAMPLE_EPOCHS)")
    parser.add_argument("--out", default="fit_your_csv_out", help="output folder")
    args = parser.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)

    species = None
    if args.csv is None:
        args.csv = os.path.join(args.out, "iris_petals.csv")
        species = example_csv(args.csv)
    table = io.read_data(args.csv)  # header optional; clear errors for bad cells
    X = table.X.astype(np.float32)
    print(f"{args.csv}: {X.shape[0]} rows, columns {table.columns or list(range(X.shape[1]))}")

    # Small settings: a short warm start, two restarts (the better ELBO is kept), small flows.
    model = VMoNF(n_components=args.components, n_blocks=4, hidden=(16,), epochs=args.epochs,
                  warm_epochs=max(1, args.epochs // 3), n_init=2, batch_size=64,
                  learning_rate=3e-3, seed=0, verbose=False).fit(X)

    # Clusters: the Bayes rule argmax p(k|x) of the fitted mixture.
    labels = model.predict(X)
    sizes = np.bincount(labels, minlength=model.n_components_)
    print(f"cluster sizes: {sizes.tolist()} (kept restart {model.best_restart_})")
    if species is not None:
        from sklearn.metrics import adjusted_rand_score

        print(f"ARI against the three species: {adjusted_rand_score(species, labels):.3f}")
    print(f"mean log-likelihood: {model.score(X):.3f} nats per row")

    # Figures (2 columns): clusters with samples, the density, the training curves.
    if X.shape[1] == 2:
        plotting.save_figure(plotting.regions_figure(model, data=X),
                             os.path.join(args.out, "clusters.png"))
        plotting.save_figure(plotting.log_density_figure(model, X),
                             os.path.join(args.out, "density.png"))
    plotting.save_figure(plotting.curves_figure(model.history_, model.n_components,
                                                kept=model.best_restart_),
                         os.path.join(args.out, "curves.png"))

    # Sample: new rows and the component that drew each.
    xs, ks = model.sample(500, seed=1)
    np.savetxt(os.path.join(args.out, "samples.csv"), np.c_[xs, ks], delimiter=",",
               header=",".join([*(table.columns or [f"x{j}" for j in range(X.shape[1])]),
                                "component"]), comments="", fmt="%.6g")

    # Save, load, and check that the loaded model scores exactly as the fitted one.
    path = os.path.join(args.out, "model")
    model.save(path)  # replaces a model directory of an earlier run, never anything else
    loaded = VMoNF.load(path)
    same = np.array_equal(loaded.score_samples(X), model.score_samples(X))
    print(f"saved {path}; loaded scores equal: {same}")
    if not same:
        sys.exit("loaded model scores differ")
    print(f"figures and samples in {args.out}/")


if __name__ == "__main__":
    main()
