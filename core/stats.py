"""Summary statistics shared by the evals, benchmarks and load tests."""

from __future__ import annotations

from collections.abc import Sequence


def percentile(xs: Sequence[float], p: float) -> float | None:
    """The ``p`` quantile (0..1) of ``xs`` by linear interpolation between the closest ranks (numpy's default
    and ``statistics.quantiles(method="inclusive")``: the median of an even count is the mean of the middle
    two); None for no values."""
    if not xs:
        return None
    s = sorted(xs)
    pos = min(max(p, 0.0), 1.0) * (len(s) - 1)
    lo = int(pos)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (pos - lo)
