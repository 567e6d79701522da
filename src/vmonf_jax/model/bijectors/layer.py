"""The contract of a flow layer: what ``flows.Flow`` calls on each of its layers.

Every layer of this package follows it, and so must a layer of a flow registered from
outside (``registry.register_flow``); ``Flow`` checks its layers against it.
"""

from typing import Protocol, runtime_checkable


@runtime_checkable
class Layer(Protocol):
    """A flow layer: static configuration (hashable), parameters built by ``init``.

    Attributes:
        stateful: the layer carries running statistics (batch-norm); it then also has
            ``init_state(dtype)`` and ``train_bijector(params, state, x)``.
    """

    stateful: bool

    def init(self, key, dtype):
        """The layer's parameter pytree (the identity map, or near it, for a fresh flow)."""

    def bijector(self, params, state=None):
        """A distrax bijector (``forward``: base -> data; both directions with log|det J|)."""
