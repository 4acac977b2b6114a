"""copairs 0.5.5's public API, implemented on pairmap (a drop-in for existing notebooks).

Change only the imports of a notebook written for copairs::

    from pairmap.compat import map                       # was: from copairs import map
    from pairmap.compat.matching import assign_reference_index, find_pairs
    from pairmap.compat import Matcher                   # was: from copairs import Matcher

Names, argument names, defaults, output columns, exception types and warnings
are copairs'. Numbers follow pairmap where it deliberately differs (see
``docs/compat.md``): exact nulls when all rankings fit in ``null_size``,
``null >= observed`` counting, NaN AP for lists without negatives, float64
ranking, and an error when a pair satisfies both the positive and the negative
rule. The null model is copairs' (``null="shared"``), passed explicitly.

``pairmap.compat.replicating`` is copairs' percent replicating
(``correlation_test``) on :func:`pairmap.percent_replicating`.

Not provided: ``copairs.compute`` (internal helpers), ``MatcherMultilabel`` and
``find_pairs_multilabel``.
"""

from pairmap.compat import map, matching, replicating
from pairmap.compat.matching import Matcher

__all__ = ["Matcher", "map", "matching", "replicating"]
