"""Files on disk, read as untrusted input and written atomically; no model built here.

``io`` reads the CLI's data files (over ``streams``: bounded reads), ``outputs`` writes
results, ``atomic`` reads small files safely and replaces folders atomically, and
``checkpoint`` saves and restores Orbax checkpoints with it.
"""
