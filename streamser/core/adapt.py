"""How an enrolment adapts the model to one voice (sans-I/O, numpy only).

The model's ``embedding`` output lives on the unit sphere and its linear head ships in the
``speaker_norm`` metadata (:class:`streamser.core.speaker_norm.SpeakerNormParams`), so the model's
own probabilities can be recomputed from a window embedding ``e`` after adapting it:

    logits = scale * head_weight @ normalize(e + shift) / T + head_bias / T + bias
             + prototype_weight * log_softmax(scale * cos(normalize(e + shift), prototypes))

An :class:`Adaptation` holds ``shift`` [D], ``bias`` [C] and the prototypes; methods differ in
which of them they fill, from the enrolment's voiced window embeddings per label:

- ``prior`` (neutral passage only; the shipped default): the model's mean log-probabilities on
  the person's neutral reading say which emotions it wrongly hears in this voice; ``bias`` moves
  them part way (``PRIOR_STRENGTH``) towards a neutral-leaning target (``NEUTRAL_TARGET`` on
  neutral, the rest shared by the other labels). No shift, no prototypes.
- ``mean``: ``shift = ref_mean - mean(enrolment)`` (the live ``--speaker-norm`` recipe with the
  enrolment as its sample; with a neutral-only enrolment it moves neutral to the average
  emotion, which measured worse than nothing).
- ``prototypes`` (neutral + one sentence per prompted emotion): ``shift = ref_mean - mean over
  labels of each label's mean`` (an emotion-balanced speaker mean), and the shifted label means
  become prototypes that vote with weight ``PROTOTYPE_WEIGHT``, at the head's own scale.
- ``reference`` (speaker-relative models, neutral passage): no shift, bias or prototypes; the
  profile's ``reference`` (the mean ``band_mean`` of the neutral reading) replaces the running
  voice spectrum as the model's ``reference`` input (:mod:`streamser.core.voice_reference`).
- ``reference_prototypes`` (speaker-relative models, neutral + prompted emotions): the
  ``reference`` of the neutral reading is fed, and each label's mean embedding *computed with
  that reference* becomes a prototype (no shift: the reference has already moved the voice).

``reference`` and ``reference_prototypes`` keep the spectrum: the other methods are built from,
and applied to, the model's own embeddings (no reference fed), as they were measured.

The constants were fixed on nEMO and RAVDESS actors 19-20 and checked on ASED; figures and the
command that regenerates them are in ``docs/calibration.md``. Pure functions; any thread.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from streamser.core.speaker_norm import SpeakerNormParams

__all__ = [
    "METHODS",
    "NEUTRAL_TARGET",
    "PRIOR_STRENGTH",
    "PROTOTYPE_WEIGHT",
    "REFERENCE_METHODS",
    "ActiveProfile",
    "Adaptation",
    "build_adaptation",
    "default_method",
    "head_logits",
]

METHODS = ("prior", "mean", "prototypes", "reference", "reference_prototypes")
#: Methods that feed the profile's reference spectrum to a speaker-relative model.
REFERENCE_METHODS = ("reference", "reference_prototypes")
PRIOR_STRENGTH = 0.5
NEUTRAL_TARGET = 0.5
PROTOTYPE_WEIGHT = 2.0


def head_logits(params: SpeakerNormParams, embeddings: np.ndarray) -> np.ndarray:
    """The model's logits [n, C] (temperature applied) of embeddings [n, D], re-normalised."""
    x = np.asarray(embeddings, dtype=np.float64)
    x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    return np.asarray((params.scale * x @ params.head_weight.T + params.head_bias)
                      / params.temperature)


def _log_softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    return np.asarray(z - np.log(np.exp(z).sum(axis=1, keepdims=True)))


@dataclass(frozen=True, eq=False)
class Adaptation:
    """What an enrolment changes: see the module docstring. Arrays are float64.

    ``prototype_labels`` index the model's labels; ``prototypes`` [K, D] are unit vectors.
    """

    method: str
    shift: np.ndarray
    bias: np.ndarray
    prototype_labels: tuple[int, ...] = ()
    prototypes: np.ndarray | None = None
    reference: np.ndarray | None = None
    """The voice's mean ``band_mean`` [n_mels] for a speaker-relative model, else None."""

    def probs(self, params: SpeakerNormParams, embeddings: np.ndarray) -> np.ndarray:
        """Adapted probabilities [n, C] of window embeddings [n, D]."""
        e = np.atleast_2d(np.asarray(embeddings, dtype=np.float64)) + self.shift
        logits = head_logits(params, e) + self.bias
        if self.prototypes is not None and len(self.prototype_labels):
            unit = e / np.maximum(np.linalg.norm(e, axis=1, keepdims=True), 1e-12)
            sims = params.scale * unit @ self.prototypes.T
            votes = np.repeat(sims.mean(axis=1, keepdims=True), logits.shape[1], axis=1)
            votes[:, list(self.prototype_labels)] = sims  # labels not enrolled: no opinion
            logits = _log_softmax(logits) + PROTOTYPE_WEIGHT * _log_softmax(votes)
        return np.exp(_log_softmax(logits))

    def to_dict(self) -> dict[str, object]:
        """JSON-ready (floats rounded to 6 decimals)."""
        def r(a: np.ndarray) -> list[object]:
            return np.round(a, 6).tolist()
        return {"method": self.method, "shift": r(self.shift), "bias": r(self.bias),
                "prototype_labels": list(self.prototype_labels),
                "prototypes": None if self.prototypes is None else r(self.prototypes),
                "reference": None if self.reference is None else r(self.reference)}

    @classmethod
    def from_dict(cls, body: Mapping[str, object], dim: int, n_labels: int) -> Adaptation:
        """Parse :meth:`to_dict` output; raise ValueError on any wrong shape or type."""
        method = body["method"]
        if method not in METHODS:
            raise ValueError(f"unknown method {method!r}")
        shift = np.asarray(body["shift"], dtype=np.float64)
        bias = np.asarray(body["bias"], dtype=np.float64)
        labels = tuple(int(i) for i in body.get("prototype_labels") or ())  # type: ignore[attr-defined]
        raw = body.get("prototypes")
        protos = None if raw is None else np.asarray(raw, dtype=np.float64)
        if shift.shape != (dim,) or bias.shape != (n_labels,):
            raise ValueError(f"shift {shift.shape} / bias {bias.shape}, expected ({dim},) / "
                             f"({n_labels},)")
        if protos is not None and protos.shape != (len(labels), dim):
            raise ValueError(f"prototypes {protos.shape}, expected ({len(labels)}, {dim})")
        if any(not 0 <= i < n_labels for i in labels):
            raise ValueError(f"prototype labels {labels} out of range")
        if not (np.isfinite(shift).all() and np.isfinite(bias).all()):
            raise ValueError("non-finite values")
        raw_ref = body.get("reference")
        reference = None if raw_ref is None else np.asarray(raw_ref, dtype=np.float64)
        if reference is not None and (reference.ndim != 1 or not len(reference)
                                      or not np.isfinite(reference).all()):
            raise ValueError(f"reference must be a list of finite numbers, got shape "
                             f"{reference.shape}")
        if method in REFERENCE_METHODS and reference is None:
            raise ValueError(f"method {method!r} without a reference")
        if method == "reference_prototypes" and protos is None:
            raise ValueError("method 'reference_prototypes' without prototypes")
        return cls(str(method), shift, bias, labels, protos, reference)


@dataclass(frozen=True, eq=False)
class ActiveProfile:
    """A named adaptation in force (compared by identity: re-loading a profile is a change)."""

    name: str
    adaptation: Adaptation


def default_method(enrolment: Mapping[str, np.ndarray],
                   reference: np.ndarray | None = None) -> str:
    """With neutral and at least one emotion: ``reference_prototypes`` for a speaker-relative
    model (``reference`` given; its enrolment embeddings must have been computed with that
    reference), else ``prototypes``; with neutral only: ``reference`` or ``prior``."""
    if len([k for k, v in enrolment.items() if len(v)]) >= 2:
        return "prototypes" if reference is None else "reference_prototypes"
    return "reference" if reference is not None else "prior"


def build_adaptation(params: SpeakerNormParams, labels: Sequence[str], method: str,
                     enrolment: Mapping[str, np.ndarray],
                     reference: np.ndarray | None = None) -> Adaptation:
    """The :class:`Adaptation` of ``enrolment`` (label -> window embeddings [n, D]).

    ``neutral`` must be present for every method but ``mean``; ``reference`` (a
    speaker-relative model's mean neutral ``band_mean``) is required by, and kept only for,
    the :data:`REFERENCE_METHODS`. Raises ValueError for an unknown method or label, or an
    empty enrolment.
    """
    adaptation = _build(params, labels, method, enrolment, reference)
    if method not in REFERENCE_METHODS or reference is None:
        return adaptation
    return Adaptation(adaptation.method, adaptation.shift, adaptation.bias,
                      adaptation.prototype_labels, adaptation.prototypes,
                      reference=np.asarray(reference, dtype=np.float64))


def _build(params: SpeakerNormParams, labels: Sequence[str], method: str,
           enrolment: Mapping[str, np.ndarray], reference: np.ndarray | None) -> Adaptation:
    groups = {k: np.asarray(v, dtype=np.float64) for k, v in enrolment.items() if len(v)}
    if not groups:
        raise ValueError("the enrolment holds no voiced windows")
    unknown = [k for k in groups if k not in labels]
    if unknown:
        raise ValueError(f"enrolment labels {unknown} are not model labels {list(labels)}")
    dim = params.ref_mean.shape[0]
    zero_shift, zero_bias = np.zeros(dim), np.zeros(len(labels))
    if method == "mean":
        mu = np.concatenate(list(groups.values())).mean(axis=0)
        return Adaptation(method, params.ref_mean - mu, zero_bias)
    if "neutral" not in groups:
        raise ValueError(f"method {method!r} needs neutral speech in the enrolment")
    if method in REFERENCE_METHODS and reference is None:
        raise ValueError(f"method {method!r} needs a speaker-relative model (its band_mean)")
    if method == "reference":
        return Adaptation(method, zero_shift, zero_bias)
    if method == "reference_prototypes":
        labels_in, protos = _prototypes(labels, groups, zero_shift)
        return Adaptation(method, zero_shift, zero_bias, labels_in, protos)
    if method == "prior":
        mean_logp = _log_softmax(head_logits(params, groups["neutral"])).mean(axis=0)
        target = np.full(len(labels), (1.0 - NEUTRAL_TARGET) / max(1, len(labels) - 1))
        target[list(labels).index("neutral")] = NEUTRAL_TARGET
        return Adaptation(method, zero_shift, -PRIOR_STRENGTH * (mean_logp - np.log(target)))
    if method == "prototypes":
        means = [v.mean(axis=0) for v in groups.values()]
        shift = params.ref_mean - np.mean(means, axis=0)
        labels_in, protos = _prototypes(labels, groups, shift)
        return Adaptation(method, shift, zero_bias, labels_in, protos)
    raise ValueError(f"unknown method {method!r}; known: {', '.join(METHODS)}")


def _prototypes(labels: Sequence[str], groups: Mapping[str, np.ndarray],
                shift: np.ndarray) -> tuple[tuple[int, ...], np.ndarray]:
    """Label indices (model order) and unit prototypes: each label's mean embedding + shift."""
    order = sorted(groups, key=list(labels).index)
    protos = np.stack([groups[k].mean(axis=0) + shift for k in order])
    protos /= np.maximum(np.linalg.norm(protos, axis=1, keepdims=True), 1e-12)
    return tuple(list(labels).index(k) for k in order), protos
