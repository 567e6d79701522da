"""The parameter table: every estimator parameter once (``parameters``) and its kinds (``kinds``).

The estimator's signature, ``vmonf fit``'s options, the manifest's checks and the
``FitConfig`` derive from it.
"""
