"""The experiment harness: everything the ``make`` targets need beyond the library.

* ``cli``: flags shared by the scripts, output directories, the seed loop.
* ``run``: one run (fit, test metrics, baselines, figures, ``metrics.json``).
* ``baselines``: test metrics of a fitted ``VMoNF`` and the baselines beside it.
* ``report``: multi-seed summaries, ``summary.json`` and ``REPORT.md``.
* ``tables``, ``jsonio``: contingency tables; the one JSON helper.

Figures come from the library's ``vmonf_jax.plotting`` (shared with ``vmonf plot``).
Needs the ``experiments`` extra (matplotlib, mlxtend, tensorflow-datasets).
"""
