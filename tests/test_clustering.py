"""Quality gates: short fits that must cluster / classify held-out toy data well.

Pinwheel: the paper's architecture (5 RealNVP components, 8 blocks, hidden 8; posterior
hidden 3; batch 512) with the estimator's defaults otherwise (k-means warm start, restarts),
only fewer ELBO epochs; three seeds, each with an independent test set (seed 100 + s).
Two circles: 64 labels (32 per class), the paper's semi-supervised schedule, shortened.
"""

import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score

from vmonf_jax import VMoNF
from vmonf_jax.data import toy


@pytest.mark.parametrize("seed", [0, *(pytest.param(s, marks=pytest.mark.slow) for s in (1, 2))])
def test_pinwheel_clusters_held_out_data(seed, record_property):
    x, _ = toy.pinwheel(seed=seed)
    x_test, y_test = toy.pinwheel(seed=100 + seed)
    model = VMoNF(n_components=5, n_blocks=8, hidden=(8,), posterior_hidden=(3,),
                  batch_size=512, epochs=100, seed=seed, verbose=False).fit(x)
    ari = adjusted_rand_score(y_test, model.predict(x_test))
    record_property("ari", ari)
    assert ari >= 0.8, ari


@pytest.mark.slow  # about 90 s: the semi-supervised path is also run by test_train (phases)
# and test_experiments (circles-semi --quick)
def test_two_circles_semi_supervised_accuracy(record_property):
    x, y = toy.two_circles(seed=0)
    x_test, y_test = toy.two_circles(seed=100)
    y_semi = toy.semi_supervised_labels(y, 32, seed=0)
    assert (y_semi >= 0).sum() == 64
    model = VMoNF(n_components=2, n_blocks=10, hidden=(8,), posterior_hidden=(16, 16),
                  batch_size=128, pretrain_epochs=100, epochs=200, seed=0, verbose=False)
    model.fit(x, y_semi)
    acc = float(np.mean(model.classes_[model.predict(x_test)] == y_test))
    record_property("accuracy", acc)
    assert acc >= 0.9, acc
