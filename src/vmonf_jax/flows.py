"""``vmonf_jax.flows``: the public name (docs/api.md) of :mod:`vmonf_jax.model.flows`.

``import vmonf_jax.flows`` and ``from vmonf_jax.flows import realnvp`` keep working; the
module they give is ``vmonf_jax.model.flows`` itself, not a copy.
"""

import sys

from vmonf_jax.model import flows as _flows

sys.modules[__name__] = _flows
