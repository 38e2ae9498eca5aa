"""The lag experiment's power statement (videoclip.book.stats.detectable_difference)."""

from __future__ import annotations

import numpy as np
import pytest

from videoclip.book.stats import detectable_difference, mean_ci


@pytest.mark.parametrize(("n", "expected"), [(3, (4.303 + 1.061) / np.sqrt(3)), (4, (3.182 + 0.978) / 2.0)])
def test_detectable_difference_from_the_t_table(n, expected):
    assert detectable_difference(n) == pytest.approx(expected, rel=1e-3)
    assert detectable_difference(n, 2.0) == pytest.approx(2 * expected, rel=1e-3)


def test_a_difference_of_that_size_is_detected_about_80_percent_of_the_time():
    rng = np.random.default_rng(0)
    n, delta = 4, detectable_difference(4)
    draws = rng.normal(delta, 1.0, size=(1500, n))
    detected = np.mean([mean_ci(d)["ci_low"] > 0 for d in draws])
    assert 0.72 < detected < 0.88  # the t approximation of the non-central t power


def test_one_value_has_no_power():
    with pytest.raises(ValueError, match="n >= 2"):
        detectable_difference(1)
