"""The model: a mixture of K normalizing flows and its posterior network q(k|x).

``mixture`` (K stacked components, q(k|x), the ELBO) over ``flows`` (a base distribution and
a chain of layers) over ``bijectors/`` (one layer per file); ``bases`` and ``priors`` are the
other parts a mixture is made of, ``registry`` names flows and bases, ``nets`` holds the
networks (conditioners and q(k|x)), and ``_distrax`` is the one module that imports distrax.
Nothing here imports from the rest of the package but ``chunked``.
"""
