"""``fit``, the driver: prepare, train, select.

``setup`` (inputs, split, budget, arrays, recipe), ``loop`` (the chunks of compiled epochs,
with callbacks between them), ``select`` (the restart kept).
"""

from vmonf_jax.train import callbacks as cb
from vmonf_jax.train import loop, select
from vmonf_jax.train.config import FitConfig, FitResult
from vmonf_jax.train.setup import setup


def fit(key, data, config: FitConfig, *, labels=None, checkpoint_dir=None, resume=False,
        checkpoint_every: int = 25, checkpoint_seconds: float = 30.0, mesh=None,
        parallel=None, noise=None) -> FitResult:
    """Fit a VMoNF by maximising the ELBO; returns a ``FitResult``.

    The ``n_init`` restarts train together (a stacked restart axis), ``config.chunk_epochs``
    epochs per compiled call; the best restart is kept (see ``FitResult.score``).

    Args:
        key: a ``jax.random`` key; everything random derives from it (restart r, epoch i use
            ``fold_in(fold_in(key, r), i)``), so a resumed fit equals an uninterrupted one.
        data: (n, dim) array, already preprocessed (the estimator standardises); a
            memory-mapped one (or a ``feeder.Rows``) of more than ``feeder.chunk_rows`` rows
            is read a chunk at a time (``train.feeder``: an epoch is one chunk; no labels).
        config: model and recipe.
        labels: optional ints, -1 = unlabelled; labelled points train their own component
            and the posterior (``config.semi_supervised``: "paper" = pre-train on the labelled
            points, then alternate unsupervised and supervised epochs; "joint" = every step
            sees both).
        checkpoint_dir: if given, training state is saved there whenever a multiple of
            ``checkpoint_every`` epochs is passed and when interrupted (KeyboardInterrupt is
            re-raised after saving).
        resume: continue from the checkpoint in ``checkpoint_dir``.
        checkpoint_every: epochs between checkpoint saves.
        checkpoint_seconds: the least time between periodic saves (an interrupt always
            saves), so a fit of a few seconds saves only when interrupted.
        mesh: the devices to train over (``vmonf_jax.parallel.resolve``): a ``Mesh``, a
            device count or a device list. With neither ``mesh`` nor ``parallel``: one
            device. See docs/distributed.md.
        parallel: how to split training over the mesh: "data", "components" or a
            ``Parallel``.
        noise: (dim,) widths, in the units of ``data``, of uniform dequantisation noise
            (``Preprocessor.noise_width``; 0: none): every training batch gets
            ``(u - 1/2) * noise``, u ~ U[0, 1), and the Gaussian start is fitted to one
            such draw of the rows; validation and scoring use the rows as given.

    Raises:
        ValueError: bad data or labels.
        NonFiniteLossError: a non-finite loss, or ``LossExplodedError`` (its subclass) for
            a loss that rose orders of magnitude above its best; the error carries the
            parameters from before the failing epoch. With the Gaussian start and a
            validation split every restart has a validated candidate: a failing restart
            then stops with a warning (as if stopped early) and the fit goes on.
    """
    s = setup(key, data, config, labels, mesh, parallel, noise)
    snap, start = loop.first_snapshot(s, key, checkpoint_dir, resume)
    hooks = [cb.Progress(len(s.recipe.schedule), snap.epoch, s.config.n_init, s.config.verbose)]
    if checkpoint_dir:
        hooks.append(cb.Checkpoint(checkpoint_dir, checkpoint_every, checkpoint_seconds))
    snap, recipe, pruned = loop.train(s, snap, hooks, tolerant=start is not None)
    return select.result(s, snap, recipe, start, pruned)
