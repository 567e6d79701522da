"""The model directory: what a saved model is and how it is rebuilt.

``manifest`` (its schema and limits), ``settings`` (estimator parameters -> ``Mixture`` and
``FitConfig``), ``modeldir`` (save and load) and ``fitrecord`` (a resumable fit's record
in its checkpoint folder).
"""
