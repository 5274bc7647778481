"""Metrics, one module per task, in the style of mir_eval.

Each module states its conventions and every difference from the reference
implementation it mirrors; ``validate`` raises ``ValueError`` on malformed
input; ``evaluate(ref, est, **kw)`` returns named scalars. Lower layers only:
numpy, scipy and the reference libraries (mir_eval, scikit-learn).
"""
