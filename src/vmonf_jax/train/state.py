"""The state of a run's restarts, as a typed pytree, and its stored form.

Every field carries a leading restart axis R once ``run.Runner.init`` stacked the restarts.
Checkpoints store ``to_dict``'s leaves: the layout of the dict the run state was before it
had a type, so a checkpoint written then still resumes.
"""

from typing import Any, NamedTuple


class Kept(NamedTuple):
    """Parameters and flow state kept by early stopping (or chosen among restarts)."""

    params: Any
    state: Any


class RunState(NamedTuple):
    """Parameters, optimiser and flow state, and the bookkeeping of checks and stopping.

    ``best_loss``: the lowest step loss so far (the divergence check's reference);
    ``active``: the restart still trains. With a validation split (else None):
    ``best_val``, the best validation log-likelihood; ``since_best``, main epochs since it
    (-1: none scored yet); ``keep``, its ``Kept`` parameters; ``keep_t``, their temperature.
    """

    params: Any
    opt_state: Any
    state: Any
    best_loss: Any
    active: Any
    best_val: Any = None
    since_best: Any = None
    keep: Kept | None = None
    keep_t: Any = None

    @property
    def n_components(self) -> int:
        """K of the (stacked) parameters."""
        return int(self.params["prior_logits"].shape[-1])

    def to_dict(self) -> dict:
        """The stored form: a dict of the fields that are set, ``keep`` a dict too."""
        out = {k: v for k, v in self._asdict().items() if v is not None}
        if self.keep is not None:
            out["keep"] = self.keep._asdict()
        return out

    @classmethod
    def from_dict(cls, d: dict) -> "RunState":
        """The run state of a ``to_dict`` form."""
        return cls(**{**d, "keep": Kept(**d["keep"])} if "keep" in d else d)
