"""The model contract: what an ONNX file must declare to be run by streamser (sans-I/O).

A streamser model is an ONNX graph with

- input ``waveform``: float32 ``[batch, samples]``, 16 kHz mono in [-1, 1] (the log-mel front end
  is inside the graph, so training and serving cannot drift);
- output ``probs``: float32 ``[batch, n_labels]``, softmax probabilities;
- optional output ``embedding``: float32 ``[batch, D]``, L2-normalised (used for calibration);
- metadata (``metadata_props``), all strings:

  ============== ======================================================= ===================
  key            meaning                                                 example
  ============== ======================================================= ===================
  labels         JSON list of canonical label names, in output order     ``["neutral", ...]``
  sample_rate    input rate in Hz; must be 16000                         ``"16000"``
  window_s       analysis window the model was trained on, seconds       ``"2.0"``
  hop_s          default hop between windows, seconds                    ``"0.5"``
  model_version  free-form version string                                ``"facenet-s-1.0.0"``
  ============== ======================================================= ===================

  Further keys (``training_data``, ``metrics``, ``license`` ...) are carried along as
  :attr:`ModelSpec.extra` and shown to users, never interpreted, except ``uncertain_below``
  (a calibrated confidence threshold) and ``speaker_reference``.

A *speaker-relative* model (metadata ``speaker_reference = "band_mean"``) also has

- output ``band_mean``: float32 ``[batch, n_mels]``, each window's mean log-mel spectrum over its
  speech frames;
- optional inputs ``reference``: float32 ``[1 or batch, n_mels]`` (a voice's mean ``band_mean``:
  its enrolment or its session so far) and ``reference_weight``: float32 ``[1 or batch]`` in
  [0, 1], how much of the reference replaces the window's own spectrum. Both default to zeros
  (graph initializers), so a caller that feeds only ``waveform`` gets the model's own output.

This module parses and checks the metadata; :mod:`streamser.model` opens the file with
onnxruntime and checks the graph's inputs and outputs. Nothing is ever guessed from a file name.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from streamser.core.frames import SAMPLE_RATE
from streamser.core.labels import CANONICAL_LABELS, check_labels
from streamser.errors import ModelContractError

__all__ = [
    "BAND_MEAN_OUTPUT",
    "EMBEDDING_OUTPUT",
    "INPUT_NAME",
    "PROBS_OUTPUT",
    "REFERENCE_INPUT",
    "REFERENCE_KEY",
    "REFERENCE_WEIGHT_INPUT",
    "REQUIRED_METADATA",
    "SAMPLE_RATE",
    "UNCERTAIN_KEY",
    "ModelSpec",
    "Prediction",
    "check_uncertain_below",
    "parse_metadata",
]

INPUT_NAME = "waveform"
PROBS_OUTPUT = "probs"
EMBEDDING_OUTPUT = "embedding"
REQUIRED_METADATA = ("labels", "sample_rate", "window_s", "hop_s", "model_version")
#: Optional metadata: confidence below which a voiced frame says "uncertain" (0 < value < 1).
UNCERTAIN_KEY = "uncertain_below"
#: Optional metadata of a speaker-relative model; its only allowed value names the output.
REFERENCE_KEY = "speaker_reference"
REFERENCE_INPUT = "reference"
REFERENCE_WEIGHT_INPUT = "reference_weight"
BAND_MEAN_OUTPUT = "band_mean"


@dataclass(frozen=True)
class ModelSpec:
    """What a model declares about itself.

    ``window_s`` and ``hop_s`` are seconds; :attr:`window_samples` converts at ``sample_rate``.
    """

    labels: tuple[str, ...]
    sample_rate: int
    window_s: float
    hop_s: float
    model_version: str
    extra: Mapping[str, str] = field(default_factory=dict)

    @property
    def window_samples(self) -> int:
        """Window length in samples at :attr:`sample_rate`."""
        return round(self.window_s * self.sample_rate)

    @property
    def hop_samples(self) -> int:
        """Default hop in samples at :attr:`sample_rate`."""
        return round(self.hop_s * self.sample_rate)

    @property
    def uncertain_below(self) -> float | None:
        """The model's calibrated confidence threshold (optional metadata ``uncertain_below``).

        A voiced frame whose top smoothed probability is below it is reported as uncertain
        rather than as a label. ``None`` when the model declares none (1.x models).
        """
        raw = self.extra.get(UNCERTAIN_KEY)
        return None if raw is None else float(raw)

    @property
    def speaker_reference(self) -> bool:
        """Whether the model is speaker-relative (takes a ``reference``; module docstring)."""
        return self.extra.get(REFERENCE_KEY) == BAND_MEAN_OUTPUT


@dataclass(frozen=True)
class Prediction:
    """Model output for a batch: ``probs`` [batch, n_labels]; ``embedding`` [batch, D] or None;
    ``band_mean`` [batch, n_mels] from a speaker-relative model, else None."""

    probs: np.ndarray
    embedding: np.ndarray | None
    band_mean: np.ndarray | None = None


def _number(meta: Mapping[str, str], key: str, source: str) -> float:
    raw = meta[key]
    try:
        value = float(raw)
    except ValueError:
        raise ModelContractError(
            f"{source}: metadata '{key}' is {raw!r}, which is not a number. "
            f"Re-export the model with '{key}' as a decimal string (e.g. '2.0')."
        ) from None
    if not math.isfinite(value) or value <= 0:
        raise ModelContractError(
            f"{source}: metadata '{key}' is {raw!r}; it must be a positive finite number. "
            "Re-export the model with a valid value."
        )
    return value


def check_uncertain_below(raw: str | float, what: str) -> float:
    """Parse an "uncertain" threshold: a probability strictly between 0 and 1 (0 disables).

    Raises :class:`ModelContractError` saying what was received and what is allowed.
    """
    try:
        value = float(raw)
    except (TypeError, ValueError):
        value = math.nan
    if not (0.0 <= value < 1.0):
        raise ModelContractError(
            f"{what} is {raw!r}; it must be a probability from 0 (never uncertain) up to but "
            "not including 1, e.g. 0.35."
        )
    return value


def parse_metadata(meta: Mapping[str, str], source: str = "model") -> ModelSpec:
    """Check the contract's metadata and return a :class:`ModelSpec`.

    ``source`` names the file in error messages. Raises :class:`ModelContractError` naming the
    first broken key, what it held, and what is allowed.
    """
    missing = [key for key in REQUIRED_METADATA if key not in meta]
    if missing:
        raise ModelContractError(
            f"{source}: ONNX metadata lacks {', '.join(missing)} (has: "
            f"{', '.join(sorted(meta)) or 'nothing'}). A streamser model must declare "
            f"{', '.join(REQUIRED_METADATA)}; export it with 'streamser export'."
        )
    try:
        labels = json.loads(meta["labels"])
    except json.JSONDecodeError:
        labels = None
    if (
        not isinstance(labels, list)
        or not labels
        or not all(isinstance(label, str) for label in labels)
    ):
        raise ModelContractError(
            f"{source}: metadata 'labels' is {meta['labels']!r}; it must be a JSON list of "
            f"label names such as {json.dumps(list(CANONICAL_LABELS[:3]))}."
        )
    unknown = check_labels(labels)
    if unknown:
        raise ModelContractError(
            f"{source}: unknown labels {unknown}; allowed labels are "
            f"{', '.join(CANONICAL_LABELS)}. Map the corpus labels to the canonical set."
        )
    if len(set(labels)) != len(labels):
        raise ModelContractError(f"{source}: metadata 'labels' repeats a label: {labels}.")
    rate = _number(meta, "sample_rate", source)
    if rate != SAMPLE_RATE:
        raise ModelContractError(
            f"{source}: model expects {meta['sample_rate']} Hz input; streamser feeds "
            f"{SAMPLE_RATE} Hz. Re-export the model for {SAMPLE_RATE} Hz waveforms."
        )
    window_s = _number(meta, "window_s", source)
    hop_s = _number(meta, "hop_s", source)
    extra = {key: value for key, value in meta.items() if key not in REQUIRED_METADATA}
    if UNCERTAIN_KEY in extra:
        check_uncertain_below(extra[UNCERTAIN_KEY], f"{source}: metadata '{UNCERTAIN_KEY}'")
    if REFERENCE_KEY in extra and extra[REFERENCE_KEY] != BAND_MEAN_OUTPUT:
        raise ModelContractError(
            f"{source}: metadata '{REFERENCE_KEY}' is {extra[REFERENCE_KEY]!r}; the only kind "
            f"of voice reference streamser knows is {BAND_MEAN_OUTPUT!r}. Upgrade streamser, "
            "or use a model without this key."
        )
    return ModelSpec(
        labels=tuple(labels),
        sample_rate=SAMPLE_RATE,
        window_s=window_s,
        hop_s=hop_s,
        model_version=meta["model_version"],
        extra=extra,
    )
