"""Calibration to one voice: saved profiles and the enrolment session around the core.

The arithmetic is sans-I/O and lives in :mod:`streamser.core`: :mod:`~streamser.core.enrolment`
(collect and check an enrolment), :mod:`~streamser.core.adapt` (turn it into an adaptation of
the model's head) and :mod:`~streamser.core.passages` (what the person reads). Here:

- :mod:`streamser.calibration.profiles` — profiles as versioned JSON in the user config folder.
"""
