"""core.stats.percentile agrees with numpy's default quantile."""

from __future__ import annotations

import numpy as np
import pytest

from core.stats import percentile


@pytest.mark.parametrize("xs", [[3.0], [1.0, 2.0], [5.0, 1.0, 4.0, 2.0, 3.0], [float(i * i) for i in range(30)]])
@pytest.mark.parametrize("p", [0.0, 0.25, 0.5, 0.9, 0.95, 1.0])
def test_percentile_is_numpys_linear_quantile(xs: list[float], p: float) -> None:
    assert percentile(xs, p) == pytest.approx(float(np.quantile(xs, p)))


def test_no_values_have_no_percentile() -> None:
    assert percentile([], 0.5) is None
