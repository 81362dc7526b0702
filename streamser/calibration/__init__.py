"""Calibration to one voice: enrolment, adaptation and saved profiles.

- :mod:`streamser.calibration.adapt` — how an enrolment's embeddings adapt the model's head
  (numpy only).
"""
