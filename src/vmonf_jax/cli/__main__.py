"""``python -m vmonf_jax.cli``: the ``vmonf`` command."""

import sys

from vmonf_jax.cli import main

sys.exit(main())
