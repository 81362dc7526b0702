"""The running voice reference: voiced windows only, a warm-up, a horizon, a reset."""

from __future__ import annotations

import numpy as np
import pytest

from streamser.core.voice_reference import ReferenceConfig, VoiceReference


def test_no_reference_before_min_windows_then_the_mean_of_voiced_windows():
    ref = VoiceReference(3, ReferenceConfig(min_windows=2, max_windows=10))
    ref.observe(np.array([1.0, 2.0, 3.0]), voiced=True)
    ref.observe(np.array([100.0, 100.0, 100.0]), voiced=False)  # a pause: ignored
    assert ref.value() is None and ref.windows == 1
    ref.observe(np.array([3.0, 4.0, 5.0]), voiced=True)
    np.testing.assert_allclose(ref.value(), [2.0, 3.0, 4.0])


def test_horizon_lets_a_new_voice_take_over_and_reset_forgets():
    ref = VoiceReference(1, ReferenceConfig(min_windows=1, max_windows=4))
    for _ in range(50):
        ref.observe(np.array([0.0]), voiced=True)
    for _ in range(30):
        ref.observe(np.array([10.0]), voiced=True)
    assert float(ref.value()[0]) > 9.9
    ref.reset()
    assert ref.value() is None and ref.windows == 0


def test_bad_rows_are_ignored_or_refused():
    ref = VoiceReference(2, ReferenceConfig(min_windows=1))
    ref.observe(np.array([np.nan, 1.0]), voiced=True)
    assert ref.windows == 0
    with pytest.raises(ValueError, match="expected"):
        ref.observe(np.zeros(3), voiced=True)
    with pytest.raises(ValueError, match="min_windows"):
        ReferenceConfig(min_windows=0)
