"""Training and evaluation pipeline for streamser models (the ``train`` extra).

Data side (numpy/soundfile/soxr only, no torch):

- :mod:`streamser.training.corpora` — loaders for RAVDESS, TESS, CREMA-D, EMO-DB, SAVEE and a CSV
  manifest, all mapped to the canonical labels of :mod:`streamser.labels`.
- :mod:`streamser.training.folds` — speaker-independent folds (k-fold and the fixed RAVDESS
  protocol) and a leakage check.
- :mod:`streamser.training.audio_io` — decode any soundfile format to float32 mono 16 kHz, with an
  on-disk cache of decoded audio.
- :mod:`streamser.training.metrics` — UA, WA, confusion matrices, expected calibration error,
  mean ± std over folds (numpy only; matplotlib imported lazily for PNGs).
- :mod:`streamser.training.baseline` — openSMILE eGeMAPS functionals + SVM on the same folds.

This package docstring imports nothing: torch is imported only by the model/training modules.
"""
