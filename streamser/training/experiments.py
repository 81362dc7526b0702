"""Experiments behind the report: speaker-independent CV, cross-corpus, transfer, ablations.

Every run writes ``runs/<name>/...`` (checkpoints and per-clip scores, gitignored) and a results
JSON under ``docs/model/results/``. Named recipes (:data:`RECIPES`) make every row of the report
reproducible with one command, e.g. ``streamser train --recipe full --cv``.

Protocols:

- **cv**: RAVDESS actors 01-20, 5 folds of 4 actors (``folds.ravdess_folds``); the test actors'
  clips never enter training; TESS (two other speakers) is added to training when the recipe
  uses it. Metrics on the test actors, 8 classes, clips scored as the live engine does.
- **cross-corpus**: RAVDESS 01-20 -> TESS and TESS -> RAVDESS 01-20, on the 7 shared classes
  (calm is dropped; a model with a calm output has that column removed before the argmax).
- **final**: all clips except RAVDESS actors 19 and 20 (the demo voices).
"""

from __future__ import annotations

import json
import logging
import os
import pickle
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np

from streamser.labels import CANONICAL_LABELS
from streamser.training import metrics
from streamser.training.augment import AugmentConfig
from streamser.training.corpora import Utterance, load_corpus
from streamser.training.data import ClipSet
from streamser.training.folds import ravdess_folds
from streamser.training.nets import ModelConfig
from streamser.training.train import ClipScores, TrainConfig, load_checkpoint, predict_clips, train

__all__ = [
    "DEMO_SPEAKERS",
    "RECIPES",
    "fit_temperature",
    "load_clips",
    "run_cross_corpus",
    "run_cv",
    "run_final",
    "select_clips",
    "speaker_normalised_probs",
]

log = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parents[2]
RESULTS = REPO / "docs" / "model" / "results"
DEMO_SPEAKERS = frozenset({"ravdess:19", "ravdess:20"})
TESS_LABELS = tuple(label for label in CANONICAL_LABELS if label != "calm")

#: Named recipes: (TrainConfig, corpora used for training besides the CV corpus, transfer source).
RECIPES: dict[str, tuple[TrainConfig, tuple[str, ...], str | None]] = {
    "full": (TrainConfig(), ("tess",), None),
    "ce_only": (TrainConfig(metric_loss="none"), ("tess",), None),
    "siamese": (TrainConfig(metric_loss="siamese"), ("tess",), None),
    "no_aug": (TrainConfig(augment=AugmentConfig.off()), ("tess",), None),
    "resnet": (TrainConfig(model=ModelConfig(arch="resnet", width=0.25)), ("tess",), None),
    "ravdess_only": (TrainConfig(), (), None),
    "transfer_tess": (TrainConfig(lr=1e-3), (), "tess_only"),
    "tess_only": (TrainConfig(), (), None),
    "transfer_tess_p4": (TrainConfig(lr=1e-3), (), "tess_only"),
    "ravdess_only_noaug": (TrainConfig(augment=AugmentConfig.off()), (), None),
    "tess_only_noaug": (TrainConfig(augment=AugmentConfig.off()), (), None),
}

#: Transfer recipes whose source is pretrained for a fixed number of epochs (else the same
#: number of epochs as the fine-tuning).
PRETRAIN_EPOCHS: dict[str, int] = {"transfer_tess_p4": 4}


def runs_dir() -> Path:
    """``$STREAMSER_RUNS`` or ``<repo>/runs`` (gitignored)."""
    return Path(os.environ.get("STREAMSER_RUNS", REPO / "runs"))


_CLIP_CACHE: dict[str, tuple[list[Utterance], list[np.ndarray]]] = {}


def load_clips(corpus: str) -> tuple[list[Utterance], list[np.ndarray]]:
    """Utterances and decoded audio of one corpus (decoded once per process, disk-cached)."""
    if corpus not in _CLIP_CACHE:
        from streamser.training.audio_io import load_many

        utts = load_corpus(corpus)
        _CLIP_CACHE[corpus] = (utts, load_many(utts, workers=2, desc=f"decode {corpus}"))
    return _CLIP_CACHE[corpus]


def select_clips(corpora: Sequence[str], keep) -> tuple[list[Utterance], list[np.ndarray]]:
    """Utterances of ``corpora`` (and their decoded audio) for which ``keep(utterance)`` is true."""
    utts: list[Utterance] = []
    audio: list[np.ndarray] = []
    for corpus in corpora:
        u, a = load_clips(corpus)
        for ui, ai in zip(u, a, strict=True):
            if keep(ui):
                utts.append(ui)
                audio.append(ai)
    return utts, audio


def fit_temperature(scores: ClipScores, y: np.ndarray) -> float:
    """Temperature minimising the NLL of the clip probabilities (grid 0.3..5, log-spaced)."""
    grid = np.exp(np.linspace(np.log(0.3), np.log(5.0), 80))
    nll = [-np.mean(np.log(scores.probs(t)[np.arange(len(y)), y] + 1e-12)) for t in grid]
    return float(grid[int(np.argmin(nll))])


def speaker_normalised_probs(
    scores: ClipScores,
    speakers: Sequence[str],
    head_w: np.ndarray,
    head_b: np.ndarray,
    scale: float,
    ref_mean: np.ndarray,
    mode: str = "mean",
) -> np.ndarray:
    """Clip probabilities after embedding-level speaker normalisation.

    For each clip, the statistics come from the window embeddings of the *same speaker's other
    clips* (unlabelled, as a live session accumulates them). ``mode="mean"``: each window
    embedding becomes ``normalize(e - mu_s + ref_mean)``; ``mode="z"``: ``normalize((e - mu_s) /
    sd_s * mean(sd_s) + ref_mean)`` (per-dimension z-score). The result goes through the model's
    own head. ``ref_mean`` is the mean training embedding.
    """
    spk = np.asarray(speakers)
    out = []
    for i, emb in enumerate(scores.window_emb):
        others = np.flatnonzero((spk == spk[i]) & (np.arange(len(spk)) != i))
        if len(others):
            pool = np.concatenate([scores.window_emb[j] for j in others])
            mu, sd = pool.mean(axis=0), pool.std(axis=0) + 1e-3
        else:
            mu, sd = ref_mean, np.ones_like(ref_mean)
        e = emb - mu + ref_mean if mode == "mean" else (emb - mu) / sd * sd.mean() + ref_mean
        e = e / np.linalg.norm(e, axis=1, keepdims=True).clip(1e-8)
        z = scale * e @ head_w.T + head_b
        p = np.exp(z - z.max(axis=1, keepdims=True))
        out.append((p / p.sum(axis=1, keepdims=True)).mean(axis=0))
    return np.stack(out)


def _fold_metrics(probs: np.ndarray, y: np.ndarray, n: int) -> dict[str, float]:
    pred = probs.argmax(axis=1)
    return {
        "ua": metrics.unweighted_accuracy(y, pred, n),
        "wa": metrics.weighted_accuracy(y, pred),
        "ece": metrics.expected_calibration_error(probs, y),
    }


def _train_recipe(
    recipe: str, cfg: TrainConfig, train_set: ClipSet, out: Path, progress: bool
) -> Path:
    _, _, source = RECIPES[recipe]
    init = None
    if source is not None:
        src_epochs = PRETRAIN_EPOCHS.get(recipe, cfg.epochs)
        init = _pretrain(source, replace(cfg, epochs=src_epochs), progress)
    return train(cfg, train_set, out, init_from=init, progress=progress)


def _pretrain(source: str, cfg: TrainConfig, progress: bool) -> Path:
    """The source model for transfer: ``tess_only`` trained on all of TESS (7 labels)."""
    src_cfg, _, _ = RECIPES[source]
    src_cfg = replace(src_cfg, epochs=cfg.epochs, steps_per_epoch=cfg.steps_per_epoch,
                      seed=cfg.seed, threads=cfg.threads)
    utts, audio = select_clips(["tess"], lambda u: True)
    data = ClipSet.build(utts, audio, TESS_LABELS)
    return train(src_cfg, data, runs_dir() / f"{source}-e{cfg.epochs}" / "model", progress=progress)


def run_cv(
    recipe: str,
    folds: Sequence[int] = (0, 1, 2, 3, 4),
    epochs: int | None = None,
    tag: str | None = None,
    progress: bool = True,
) -> dict:
    """Speaker-independent CV on RAVDESS 01-20; returns and writes the results dict."""
    cfg, extra, _ = RECIPES[recipe]
    if epochs is not None:
        cfg = replace(cfg, epochs=epochs)
    name = tag or f"cv-{recipe}-e{cfg.epochs}"
    root = runs_dir() / name
    labels = CANONICAL_LABELS
    per_fold = []
    for k in folds:
        fold = ravdess_folds()[k]
        train_u, train_a = select_clips(["ravdess", *extra], lambda u, f=fold: not f.is_test(u))
        test_u, test_a = select_clips(["ravdess"], fold.is_test)
        train_set = ClipSet.build(train_u, train_a, labels)
        test_set = ClipSet.build(test_u, test_a, labels)
        model_path = _train_recipe(recipe, cfg, train_set, root / f"fold{k}", progress)
        model, state = load_checkpoint(model_path)
        scores = predict_clips(model, test_set.audio, labels, cfg.window, cfg.hop)
        rng = np.random.default_rng(k)
        ref_idx = rng.choice(len(train_set), size=min(400, len(train_set)), replace=False)
        ref = predict_clips(model, [train_set.audio[i] for i in ref_idx], labels, cfg.window,
                            cfg.hop)
        ref_mean = np.concatenate(ref.window_emb).mean(axis=0)
        with open(root / f"fold{k}" / "scores.pkl", "wb") as fh:
            pickle.dump({"scores": scores, "y": test_set.y,
                         "speakers": [u.speaker for u in test_set.utterances],
                         "ref_mean": ref_mean,
                         "head_w": model.head.weight.detach().numpy(),
                         "head_b": model.head.bias.detach().numpy(),
                         "scale": model.cfg.scale, "history": state["history"]}, fh)
        m = _fold_metrics(scores.probs(), test_set.y, len(labels))
        per_fold.append({"fold": k, "test_speakers": sorted(fold.test_speakers), **m})
        log.info("%s fold %d: %s", name, k, m)
    result = summarise_cv(name, recipe, cfg, folds)
    return result


def summarise_cv(name: str, recipe: str, cfg: TrainConfig, folds: Sequence[int]) -> dict:
    """Read every fold's scores; add cross-fitted temperature, speaker norm; write JSON + PNG."""
    root = runs_dir() / name
    labels = CANONICAL_LABELS
    fold_data = {}
    for k in folds:
        with open(root / f"fold{k}" / "scores.pkl", "rb") as fh:
            fold_data[k] = pickle.load(fh)
    rows = []
    cm_total = np.zeros((len(labels), len(labels)), dtype=np.int64)
    temps = {}
    for k, d in fold_data.items():
        scores, y = d["scores"], d["y"]
        probs = scores.probs()
        row = {"fold": k, **_fold_metrics(probs, y, len(labels))}
        others = [o for o in fold_data if o != k]
        if others:  # temperature fitted on the other folds' test clips (cross-fitting)
            pooled = ClipScores(
                labels, [z for o in others for z in fold_data[o]["scores"].window_logits], []
            )
            t = fit_temperature(pooled, np.concatenate([fold_data[o]["y"] for o in others]))
            temps[k] = t
            row["temperature"] = t
            row["ece_calibrated"] = metrics.expected_calibration_error(scores.probs(t), y)
        sn = speaker_normalised_probs(scores, d["speakers"], d["head_w"], d["head_b"], d["scale"],
                                      d["ref_mean"])
        row["ua_spknorm"] = metrics.unweighted_accuracy(y, sn.argmax(1), len(labels))
        row["wa_spknorm"] = metrics.weighted_accuracy(y, sn.argmax(1))
        sz = speaker_normalised_probs(scores, d["speakers"], d["head_w"], d["head_b"], d["scale"],
                                      d["ref_mean"], mode="z")
        row["ua_spkz"] = metrics.unweighted_accuracy(y, sz.argmax(1), len(labels))
        row["wa_spkz"] = metrics.weighted_accuracy(y, sz.argmax(1))
        cm_total += metrics.confusion_matrix(y, probs.argmax(1), len(labels))
        rows.append(row)
    summary = {key: value.as_dict() for key, value in metrics.summarise(
        [{k: v for k, v in r.items() if k != "fold"} for r in rows]).items()}
    RESULTS.mkdir(parents=True, exist_ok=True)
    png = metrics.save_confusion_png(
        cm_total, labels, REPO / "docs" / "model" / f"confusion-{name}.png",
        title=f"{name}: RAVDESS 01-20, {len(rows)} speaker-independent folds (pooled)")
    result = {"name": name, "recipe": recipe, "protocol": "ravdess-5fold-speaker-independent",
              "folds": rows, "summary": summary, "confusion": cm_total.tolist(),
              "labels": list(labels), "confusion_png": png.name, "config": cfg.to_json(),
              "temperature_all_folds": fit_temperature(
                  ClipScores(labels, [z for d in fold_data.values()
                                      for z in d["scores"].window_logits], []),
                  np.concatenate([d["y"] for d in fold_data.values()])),
              "train_seconds": [d["history"][-1]["elapsed_s"] for d in fold_data.values()]}
    (RESULTS / f"{name}.json").write_text(json.dumps(result, indent=1))
    return result


def run_cross_corpus(
    epochs: int | None = None, progress: bool = True, augment: bool = True
) -> dict:
    """RAVDESS 01-20 -> TESS and TESS -> RAVDESS 01-20 on the 7 shared classes.

    ``augment=False`` uses the augmentation-free recipes and writes ``cross_corpus-no_aug.json``.
    """
    out: dict = {"protocol": "cross-corpus, 7 shared classes (no calm)", "runs": {}}
    shared = TESS_LABELS
    sfx = "" if augment else "_noaug"
    for src, dst, recipe in (("ravdess", "tess", "ravdess_only" + sfx),
                             ("tess", "ravdess", "tess_only" + sfx)):
        cfg, _, _ = RECIPES[recipe]
        if epochs is not None:
            cfg = replace(cfg, epochs=epochs)
        train_labels = CANONICAL_LABELS if src == "ravdess" else TESS_LABELS
        u, a = select_clips([src], lambda u: True)
        train_set = ClipSet.build(u, a, train_labels)
        if src == "tess":
            path = _pretrain(recipe, cfg, progress)
        else:
            path = train(cfg, train_set, runs_dir() / f"xc-{src}{sfx}-e{cfg.epochs}",
                         progress=progress)
        model, _ = load_checkpoint(path)
        tu, ta = select_clips([dst], lambda u: True)
        test_set = ClipSet.build(tu, ta, shared)
        scores = predict_clips(model, test_set.audio, train_labels, cfg.window, cfg.hop)
        cols = [train_labels.index(label) for label in shared]
        probs = scores.probs()[:, cols]
        probs = probs / probs.sum(axis=1, keepdims=True)
        pred = probs.argmax(1)
        cm = metrics.confusion_matrix(test_set.y, pred, len(shared))
        png = metrics.save_confusion_png(cm, shared, REPO / "docs" / "model" /
                                         f"confusion-xc-{src}-to-{dst}{sfx}.png",
                                         title=f"train {src} -> test {dst} (7 classes)")
        out["runs"][f"{src}->{dst}"] = {
            "ua": metrics.unweighted_accuracy(test_set.y, pred, len(shared)),
            "wa": metrics.weighted_accuracy(test_set.y, pred), "n_test": len(test_set),
            "confusion": cm.tolist(), "confusion_png": png.name, "config": cfg.to_json()}
        log.info("cross-corpus %s->%s: %s", src, dst, out["runs"][f"{src}->{dst}"]["ua"])
    out["labels"] = list(shared)
    RESULTS.mkdir(parents=True, exist_ok=True)
    name = "cross_corpus.json" if augment else "cross_corpus-no_aug.json"
    (RESULTS / name).write_text(json.dumps(out, indent=1))
    return out


def run_final(recipe: str = "full", epochs: int | None = None, progress: bool = True) -> Path:
    """Train the shipped model: every clip except RAVDESS actors 19 and 20."""
    cfg, extra, _ = RECIPES[recipe]
    if epochs is not None:
        cfg = replace(cfg, epochs=epochs)
    utts, audio = select_clips(["ravdess", *extra], lambda u: u.speaker not in DEMO_SPEAKERS)
    assert not any(u.speaker in DEMO_SPEAKERS for u in utts)
    data = ClipSet.build(utts, audio, CANONICAL_LABELS)
    return _train_recipe(recipe, cfg, data, runs_dir() / f"final-{recipe}-e{cfg.epochs}", progress)


def final_reference(
    model_path: Path | str,
    recipe: str = "full",
    n: int = 400,
    corpora: Sequence[str] | None = None,
) -> dict:
    """Post-processing constants for embedding-level speaker normalisation of a final model.

    Returns ``{"ref_mean", "head_weight", "head_bias", "scale"}`` (lists of floats): the mean
    window embedding of ``n`` random labelled training clips (never RAVDESS 19/20) and the head,
    so a consumer can compute ``softmax((scale * W @ normalize(e - mu_speaker + ref_mean) + b) /
    T)``. The clips come from ``corpora``, else from the recipe's (RAVDESS plus its extras).
    """
    if corpora is None:
        _, extra, _ = RECIPES[recipe]
        corpora = ["ravdess", *extra]
    model, state = load_checkpoint(model_path)
    cfg = TrainConfig.from_json(state["config"])
    utts, audio = select_clips(
        corpora, lambda u: u.speaker not in DEMO_SPEAKERS and u.label is not None)
    idx = np.random.default_rng(0).choice(len(utts), size=min(n, len(utts)), replace=False)
    scores = predict_clips(model, [audio[i] for i in idx], tuple(state["labels"]), cfg.window,
                           cfg.hop)
    return {
        "ref_mean": np.concatenate(scores.window_emb).mean(axis=0).round(6).tolist(),
        "head_weight": model.head.weight.detach().numpy().round(6).tolist(),
        "head_bias": model.head.bias.detach().numpy().round(6).tolist(),
        "scale": model.cfg.scale,
    }
