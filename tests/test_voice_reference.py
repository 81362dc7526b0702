"""The running voice reference: voiced windows only, a warm-up, a horizon, a reset."""

from __future__ import annotations

import numpy as np
import pytest

from streamser.core.voice_reference import ReferenceConfig, VoiceReference, reference_mismatch_db


def test_no_reference_before_min_windows_then_the_mean_of_voiced_windows():
    ref = VoiceReference(3, ReferenceConfig(min_windows=2, max_windows=10))
    ref.observe(np.array([1.0, 2.0, 3.0]), voiced=True)
    ref.observe(np.array([100.0, 100.0, 100.0]), voiced=False)  # a pause: ignored
    assert ref.value() is None and ref.windows == 1
    np.testing.assert_allclose(ref.value(min_windows=1), [1.0, 2.0, 3.0])  # an earlier look
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


def test_mismatch_ignores_level_and_measures_colour_in_db():
    a = np.linspace(-3.0, 3.0, 64)
    assert reference_mismatch_db(a, a + 2.0) == pytest.approx(0.0, abs=1e-9)  # level only
    tilted = a + np.where(np.arange(64) < 32, 0.0, 10.0 * np.log(10) / 10)  # top half +10 dB
    assert reference_mismatch_db(tilted, a) == pytest.approx(5.0)  # +/-5 dB about the mean
    with pytest.raises(ValueError, match="1-D of one length"):
        reference_mismatch_db(a, a[:10])
