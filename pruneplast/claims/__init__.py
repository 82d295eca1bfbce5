"""The studies' claims, one function each (:mod:`.study_a`, :mod:`.study_b`); see :mod:`pruneplast.scorecard`."""
