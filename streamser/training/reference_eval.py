"""Speaker-relative scoring: a held-out corpus through a model whose front end subtracts a
reference spectrum of the voice (see :meth:`streamser.training.frontend.LogMel.forward`).

For every leave-one-corpus-out run of a recipe (``runs/loco-<recipe>-s<steps>/<target>/
model.pt``), each test speaker is scored on the shared four classes in these modes:

- ``own``: the plain band front end (each window subtracts its own mean), the model alone;
- ``running``: one live session: the speaker's clips in a random order, each window's reference
  the running mean band spectrum (:meth:`~streamser.training.frontend.LogMel.band_mean`) of
  the windows heard before it, once ``min_windows`` have been heard (before that, ``own``),
  computed by the analyzer's own :class:`~streamser.core.voice_reference.VoiceReference` —
  what a live analyzer does with no enrolment;
- ``neutral``: a neutral enrolment: the reference is the mean band spectrum of the speaker's
  neutral clips adding up to ``enrol_s`` seconds of speech, or half of them where they are
  fewer (RAVDESS: 2 clips, about 7 s); those clips are never scored, in any mode, so every
  mode is scored on the same clips;
- ``guarded``: ``neutral`` as the analyzer applies it: the enrolment's reference, except that
  from ``guard_windows`` voiced windows on, a window whose running reference differs from the
  enrolment's by more than :data:`~streamser.core.voice_reference.PROFILE_MISMATCH_DB` is
  scored as without a profile (``own``; an enrolment recorded through another chain,
  ``--enrol-chain``);
- ``session``: the reference of all the speaker's labelled clips (an upper bound for
  ``running``: a session that has heard everything);

and each of ``own``, ``running``, ``neutral`` and ``guarded`` again followed by the live session
prior (:class:`streamser.core.session_prior.SessionPrior`, the clips in the same random order).

With ``--prompted`` the enrolment also holds one random clip of each other shared emotion (a
prompted sentence per emotion, issue 9), never scored in any mode, and two modes are added:

- ``prompted``: what a prompted profile of a speaker-relative model does at run time
  (:func:`streamser.core.adapt.build_adaptation`, method ``reference_prototypes``): the neutral
  enrolment's reference is fed, and per-emotion prototypes built from the enrolment's window
  embeddings computed with that reference vote beside the head (logits at the shipped model's
  temperature, ``--temperature``);
- ``prompted_own``: a prompted profile as streamser built it before 2.1.1: no reference, the
  ``prototypes`` method of :func:`streamser.core.adapt.build_adaptation` on the model's own
  embeddings (shifted to the mean window embedding of 200 clips of two training corpora, as
  :mod:`streamser.training.calib_loco` exports it);
- each followed by the session prior (``+prior``).

Usage (after ``python -m streamser.training.loco loco --recipe v7``)::

    python -m streamser.training.reference_eval --recipe v7 [--targets nemo ased] [--prompted]

Writes ``docs/model/results/reference-<recipe>[-w<weight>][-e<enrol_s>][-prompted].json``.
Runs on the training thread count given by ``--threads``; nothing here is used by the live
analyzer.
"""

from __future__ import annotations

import argparse
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from streamser.core.adapt import build_adaptation
from streamser.core.session_prior import PriorConfig
from streamser.core.speaker_norm import SpeakerNormParams
from streamser.core.voice_reference import (
    PROFILE_CHECK_WINDOWS,
    PROFILE_MISMATCH_DB,
    ReferenceConfig,
    VoiceReference,
    reference_mismatch_db,
)
from streamser.training import metrics
from streamser.training.calib_loco import training_ref_mean
from streamser.training.data import FRAME, engine_windows, voiced_frames
from streamser.training.experiments import RESULTS
from streamser.training.loco import LOCO_TARGETS, SHARED4, _pool, _recipe, restrict, run_root
from streamser.training.nets import SERModel
from streamser.training.prior_eval import session_probs, softmax_rows
from streamser.training.robustness import CONDITIONS, conditions
from streamser.training.train import TrainConfig, load_checkpoint

__all__ = ["MODES", "PROMPTED_MODES", "SpeakerPlan", "evaluate_target", "main", "plan_speaker"]

log = logging.getLogger(__name__)

#: Scoring modes, in the order of the printed table.
MODES: tuple[str, ...] = ("own", "own+prior", "running", "running+prior", "neutral",
                          "neutral+prior", "guarded", "guarded+prior", "session")
#: Added by ``--prompted``.
PROMPTED_MODES: tuple[str, ...] = ("prompted", "prompted+prior", "prompted_own",
                                   "prompted_own+prior")


@dataclass(frozen=True)
class SpeakerPlan:
    """Which of one speaker's clips enrol, which are scored, and in what order.

    Indices are into the held-out corpus's clip list; ``order`` is the scored clips in the
    session's (random) playing order; ``prompts`` the prompted sentences (one clip per other
    shared emotion the speaker has; empty unless asked for).
    """

    enrol: tuple[int, ...]
    order: tuple[int, ...]
    prompts: tuple[int, ...] = ()


def plan_speaker(clips: Sequence[int], labels: Sequence[str | None],
                 speech_s: Sequence[float], enrol_s: float,
                 rng: np.random.Generator, prompted: bool = False) -> SpeakerPlan | None:
    """Neutral clips (in a random order) until ``enrol_s`` seconds of speech enrol, but at
    most half of the speaker's neutral clips, so neutral is still scored; with ``prompted``
    also one random clip of each other shared emotion of which the speaker has at least two;
    the speaker's shared-class clips that remain are scored. ``None`` with fewer than two
    neutral clips."""
    neutral = [i for i in clips if labels[i] == "neutral"]
    if len(neutral) < 2:
        return None
    enrol: list[int] = []
    total = 0.0
    for i in rng.permutation(neutral):
        if total >= enrol_s or len(enrol) >= len(neutral) // 2:
            break
        enrol.append(int(i))
        total += speech_s[int(i)]
    prompts: list[int] = []
    if prompted:
        for label in SHARED4[1:]:
            own = [i for i in clips if labels[i] == label]
            if len(own) >= 2:
                prompts.append(int(rng.choice(own)))
    scored = [i for i in clips if labels[i] in SHARED4 and i not in enrol and i not in prompts]
    return SpeakerPlan(tuple(enrol), tuple(int(i) for i in rng.permutation(scored)),
                       tuple(prompts))


@torch.no_grad()
def _band_means(model: SERModel, windows: np.ndarray, batch: int = 256) -> np.ndarray:
    out = [model.frontend.band_mean(torch.from_numpy(windows[s: s + batch])).numpy()
           for s in range(0, len(windows), batch)]
    return np.concatenate(out)


@torch.no_grad()
def _forward(model: SERModel, windows: np.ndarray, ref: np.ndarray, weight: np.ndarray,
             batch: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """``(logits, embeddings)`` of ``windows`` with per-row references."""
    out, emb = [], []
    for s in range(0, len(windows), batch):
        z, e = model(torch.from_numpy(windows[s: s + batch]),
                     torch.from_numpy(ref[s: s + batch].astype(np.float32)),
                     torch.from_numpy(weight[s: s + batch].astype(np.float32)))
        out.append(z.numpy())
        emb.append(e.numpy())
    return np.concatenate(out), np.concatenate(emb)


def _logits(model: SERModel, windows: np.ndarray, ref: np.ndarray, weight: np.ndarray,
            batch: int = 256) -> np.ndarray:
    return _forward(model, windows, ref, weight, batch)[0]


def _head_params(model: SERModel, temperature: float) -> SpeakerNormParams:
    """The model's head as :mod:`streamser.core.adapt` reads it (no reference embedding: the
    ``prompted`` mode shifts nothing)."""
    return SpeakerNormParams(
        head_weight=model.head.weight.detach().numpy().astype(np.float64),
        head_bias=model.head.bias.detach().numpy().astype(np.float64),
        scale=float(model.cfg.scale),
        ref_mean=np.zeros(model.cfg.emb_dim),
        temperature=temperature)


def _prompted_preds(model: SERModel, target: str, labels: Sequence[str], utts: Sequence,
                    flat: np.ndarray, bounds: np.ndarray, plans: Sequence[SpeakerPlan],
                    pos: dict[int, int], scored: np.ndarray, neutral_ref: np.ndarray,
                    weight_of: float, temperature: float, hop: int
                    ) -> dict[str, list[np.ndarray]]:
    """Clip predictions (4-class argmax, per plan) of the :data:`PROMPTED_MODES`; ``flat``
    holds every clip's engine windows (``bounds`` delimit each clip's), ``hop`` in samples."""
    n_mels = neutral_ref.shape[1]
    params = _head_params(model, temperature)
    ref_e = _forward(model, flat[scored], neutral_ref[scored],
                     np.full(len(scored), weight_of))[1]
    own_e = _forward(model, flat[scored], np.zeros((len(scored), n_mels)),
                     np.zeros(len(scored)))[1]
    ref_mean = training_ref_mean(model, target, flat.shape[1], hop)
    own_params = SpeakerNormParams(params.head_weight, params.head_bias, params.scale, ref_mean,
                                   temperature)
    preds: dict[str, list[np.ndarray]] = {m: [] for m in PROMPTED_MODES}
    for p in plans:
        enrol = (*p.enrol, *p.prompts)
        rows = {i: np.arange(bounds[i], bounds[i + 1]) for i in enrol}
        voice = neutral_ref[bounds[p.order[0]]]
        with_ref: dict[str, list[np.ndarray]] = {}
        without: dict[str, list[np.ndarray]] = {}
        for i in enrol:
            n = len(rows[i])
            label = utts[i].label or ""
            with_ref.setdefault(label, []).append(
                _forward(model, flat[rows[i]], np.tile(voice, (n, 1)), np.full(n, weight_of))[1])
            without.setdefault(label, []).append(
                _forward(model, flat[rows[i]], np.zeros((n, n_mels)), np.zeros(n))[1])
        variants = {
            "prompted": (build_adaptation(
                params, labels, "reference_prototypes",
                {k: np.concatenate(v) for k, v in with_ref.items()}, voice), params, ref_e),
            "prompted_own": (build_adaptation(
                own_params, labels, "prototypes",
                {k: np.concatenate(v) for k, v in without.items()}), own_params, own_e),
        }
        order = np.arange(len(p.order))
        for name, (adaptation, prm, emb) in variants.items():
            wp_clips = [adaptation.probs(prm, emb[[pos[r] for r in range(bounds[i],
                                                                         bounds[i + 1])]])
                        for i in p.order]
            preds[name].append(restrict(session_probs(wp_clips, order, None), labels,
                                        SHARED4).argmax(1))
            preds[f"{name}+prior"].append(restrict(
                session_probs(wp_clips, order, PriorConfig()), labels, SHARED4).argmax(1))
    return preds


def evaluate_target(recipe: str, target: str, steps: int | None = None, enrol_s: float = 20.0,
                    min_windows: int = 8, seed: int = 0, weight_of: float = 1.0,
                    prompted: bool = False, temperature: float = 2.22,
                    enrol_chain: str | None = None,
                    guard_windows: int = PROFILE_CHECK_WINDOWS) -> dict:
    """UA / WA / most-predicted share per mode (module docstring) for one held-out corpus.

    ``weight_of`` is the ``reference_weight`` the reference modes feed (1: the reference
    replaces the window's own spectrum; 0.5: half of each); ``prompted`` adds the prompted
    modes, whose head logits are divided by ``temperature``; ``enrol_chain`` (a condition of
    :func:`streamser.training.robustness.conditions`) passes the enrolment clips through that
    recording chain, as if the profile had been recorded with another microphone or room."""
    cfg = _recipe(recipe, steps, None)
    path = run_root("loco", recipe, cfg) / target / "model.pt"
    model, state = load_checkpoint(path)
    run_cfg = TrainConfig.from_json(state["config"])
    labels = list(state["labels"])
    utts, audio = _pool([target], lambda u: u.label in labels)
    speech_s = [float(voiced_frames(a).sum()) * FRAME / 16_000 for a in audio]
    rng = np.random.default_rng(seed)
    speakers = sorted({u.speaker for u in utts})
    plans: list[SpeakerPlan] = []
    clips_of: dict[int, list[int]] = {}  # plan index -> the speaker's clips
    for s in speakers:
        clips = [i for i, u in enumerate(utts) if u.speaker == s]
        plan = plan_speaker(clips, [u.label for u in utts], speech_s, enrol_s, rng, prompted)
        if plan is not None:
            clips_of[len(plans)] = clips
            plans.append(plan)
    if enrol_chain is not None:  # the profile was recorded through another chain
        chain = conditions([a for a in audio[:50]])[enrol_chain]
        audio = list(audio)
        for p in plans:
            for i in (*p.enrol, *p.prompts):
                audio[i] = chain(audio[i], i).astype(np.float32)
    wins = [engine_windows(a, run_cfg.window, run_cfg.hop) for a in audio]
    bounds = np.cumsum([0, *[len(w) for w in wins]])
    flat = np.concatenate(wins)
    bm = _band_means(model, flat)
    n_mels = bm.shape[1]
    ref = {m: np.zeros((len(flat), n_mels)) for m in ("running", "neutral", "guarded",
                                                        "session")}
    weight = {m: np.zeros(len(flat)) for m in ref}
    guard_used = []  # per speaker: share of scored windows whose profile reference was dropped
    for k, plan in enumerate(plans):
        clips = clips_of[k]
        rows_of = {i: np.arange(bounds[i], bounds[i + 1]) for i in clips}
        enrol_rows = np.concatenate([rows_of[i] for i in plan.enrol])
        all_rows = np.concatenate([rows_of[i] for i in clips])
        enrolled = bm[enrol_rows].mean(axis=0)
        running = VoiceReference(n_mels, ReferenceConfig(min_windows=min_windows))
        dropped = total = 0
        for i in plan.order:
            for r in rows_of[i]:
                value = running.value()  # what the analyzer feeds this window: the past only
                ref["guarded"][r], weight["guarded"][r] = enrolled, weight_of
                if value is not None:
                    ref["running"][r], weight["running"][r] = value, weight_of
                check = running.value(guard_windows)
                if (check is not None
                        and reference_mismatch_db(enrolled, check) > PROFILE_MISMATCH_DB):
                    weight["guarded"][r] = 0.0  # set aside: the window alone, as "own"
                    dropped += 1
                total += 1
                running.observe(bm[r], voiced=True)
            ref["neutral"][rows_of[i]] = enrolled
            ref["session"][rows_of[i]] = bm[all_rows].mean(axis=0)
            weight["neutral"][rows_of[i]] = weight["session"][rows_of[i]] = weight_of
        guard_used.append(dropped / max(1, total))
    scored = np.concatenate([np.arange(bounds[i], bounds[i + 1])
                             for p in plans for i in p.order])
    logits = {"own": _logits(model, flat[scored], np.zeros((len(scored), n_mels)),
                             np.zeros(len(scored)))}
    for m in ref:
        logits[m] = _logits(model, flat[scored], ref[m][scored], weight[m][scored])
    pos = {int(r): k for k, r in enumerate(scored)}  # flat window row -> scored row
    modes = MODES + (PROMPTED_MODES if prompted else ())
    truth: list[int] = []
    preds: dict[str, list[np.ndarray]] = {m: [] for m in modes}
    if prompted:
        for m, pr in _prompted_preds(model, target, labels, utts, flat, bounds, plans, pos,
                                     scored, ref["neutral"], weight_of, temperature,
                                     run_cfg.hop).items():
            preds[m] = pr
    for p in plans:
        # window probabilities of this speaker's scored clips, per mode, in session order
        for base in ("own", "running", "neutral", "guarded", "session"):
            wp_clips = [softmax_rows(logits[base][[pos[r] for r in range(bounds[i],
                                                                             bounds[i + 1])]])
                        for i in p.order]
            order = np.arange(len(p.order))
            preds[base].append(restrict(session_probs(wp_clips, order, None), labels,
                                        SHARED4).argmax(1))
            if base != "session":
                preds[f"{base}+prior"].append(restrict(
                    session_probs(wp_clips, order, PriorConfig()), labels, SHARED4).argmax(1))
        truth.extend(SHARED4.index(utts[i].label or "") for i in p.order)
    y = np.array(truth)
    out: dict = {"n_clips": len(y), "n_speakers": len(plans),
                 "enrol_clips": sum(len(p.enrol) for p in plans),
                 "prompt_clips": sum(len(p.prompts) for p in plans),
                 "enrol_s_mean": float(np.mean([sum(speech_s[i] for i in p.enrol)
                                                for p in plans])),
                 "guard_dropped_share": float(np.mean(guard_used)),
                 "guard_speakers": int(sum(g > 0.5 for g in guard_used))}
    for m in modes:
        flat_pr = np.concatenate(preds[m])
        share = np.bincount(flat_pr, minlength=4) / len(flat_pr)
        out[m] = {"ua": metrics.unweighted_accuracy(y, flat_pr, 4),
                  "wa": metrics.weighted_accuracy(y, flat_pr),
                  "most_predicted": SHARED4[int(share.argmax())],
                  "most_predicted_share": float(share.max())}
    return out


def _shipped_temperature() -> float:
    """The temperature in the shipped model's metadata."""
    import onnx

    from streamser.resources import default_model_path

    meta = {p.key: p.value for p in onnx.load(str(default_model_path())).metadata_props}
    return float(meta.get("temperature", "1"))


def main(argv: Sequence[str] | None = None) -> int:
    """Command line (module docstring)."""
    ap = argparse.ArgumentParser(prog="python -m streamser.training.reference_eval")
    ap.add_argument("--recipe", required=True)
    ap.add_argument("--targets", nargs="+", default=list(LOCO_TARGETS), choices=LOCO_TARGETS)
    ap.add_argument("--steps", type=int, default=None)
    ap.add_argument("--enrol-s", type=float, default=20.0)
    ap.add_argument("--weight", type=float, default=1.0,
                    help="reference_weight of the reference modes (default 1)")
    ap.add_argument("--prompted", action="store_true",
                    help="also enrol one clip per other emotion; add the prompted modes")
    ap.add_argument("--temperature", type=float, default=None,
                    help="head temperature of the prompted modes (default: the shipped "
                         "model's)")
    ap.add_argument("--enrol-chain", default=None, choices=CONDITIONS,
                    help="record the enrolment clips through this chain (a robustness "
                         "condition): a profile made with another microphone or room")
    ap.add_argument("--guard-windows", type=int, default=PROFILE_CHECK_WINDOWS,
                    help="voiced windows before the guarded mode judges a profile (default "
                         "%(default)s, the analyzer's)")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    torch.set_num_threads(args.threads)
    if args.temperature is None:
        args.temperature = _shipped_temperature()
    suffix = ("" if args.weight == 1.0 else f"-w{args.weight:g}") + (
        "" if args.enrol_s == 20.0 else f"-e{args.enrol_s:g}") + (
        "-prompted" if args.prompted else "") + (
        "" if args.enrol_chain is None else "-enrol-" + args.enrol_chain.split()[0]
        + "".join(c for c in args.enrol_chain.split()[-2] if c.isalnum() or c in "+-.")) + (
        "" if args.guard_windows == PROFILE_CHECK_WINDOWS else f"-g{args.guard_windows}")
    modes = MODES + (PROMPTED_MODES if args.prompted else ())
    out_path = RESULTS / f"reference-{args.recipe}{suffix}.json"
    for t in args.targets:
        row = evaluate_target(args.recipe, t, args.steps, args.enrol_s, weight_of=args.weight,
                              prompted=args.prompted, temperature=args.temperature,
                              enrol_chain=args.enrol_chain, guard_windows=args.guard_windows)
        print(t, " ".join(f"{m} {row[m]['ua']:.3f}" for m in modes), flush=True)
        # read just before writing: runs for other targets may have written meanwhile
        result = (json.loads(out_path.read_text()) if out_path.exists()
                  else {"recipe": args.recipe, "weight": args.weight, "targets": {}})
        result["targets"][t] = row
        result["temperature"] = args.temperature if args.prompted else None
        result["enrol_chain"] = args.enrol_chain
        out_path.write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
