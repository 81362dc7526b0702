"""Training loop and engine-like prediction for :class:`~streamser.training.nets.SERModel`.

:func:`train` draws random speech-anchored crops of ``window_s`` seconds (see
:mod:`streamser.training.data`), augments them, and optimises cross-entropy (with label smoothing)
plus an optional metric loss on the embedding. AdamW with a one-cycle schedule; a checkpoint is
written after every epoch and a run resumes from it. All randomness derives from ``seed``.

:func:`predict_clips` scores clips exactly as the engine does (engine windows, mean of window
probabilities) and keeps each window's logits and embedding for calibration and analysis.
"""

from __future__ import annotations

import itertools
import json
import logging
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.nn import functional as F

from streamser.training.augment import AugmentConfig, augment_waveforms, spec_augment
from streamser.training.channel import ChannelAugment, ChannelConfig, NoiseBank
from streamser.training.data import ClipSet, engine_windows
from streamser.training.frontend import FrontEndConfig
from streamser.training.losses import (
    grad_reverse,
    js_consistency,
    siamese_distance_loss,
    triplet_semihard_loss,
)
from streamser.training.nets import ModelConfig, SERModel

__all__ = ["ClipScores", "TrainConfig", "load_checkpoint", "predict_clips", "soup_checkpoints",
           "train"]

log = logging.getLogger(__name__)
SAMPLE_RATE = 16_000


#: Fields added after runs were trained, left out of :meth:`TrainConfig.to_json` while their
#: switch is off: ``(section, switch, fields)``, ``section`` ``""`` for the top level.
_LEFT_OUT_WHEN_OFF: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("", "reference_p", ("reference_p", "reference_clips", "reference_neutral_p")),
    ("", "corpus_adv_weight", ("corpus_adv_weight",)),
    ("", "consistency_weight", ("consistency_weight",)),
    ("model", "prosody", ("prosody",)),
    ("frontend", "denoise", ("denoise", "denoise_floor_db", "denoise_frames")),
    ("", "pretrain_speakers", ("pretrain_speakers",)),
)


@dataclass(frozen=True)
class TrainConfig:
    """One training recipe. Times in seconds; ``epochs * steps_per_epoch`` batches in total."""

    model: ModelConfig = field(default_factory=ModelConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    frontend: FrontEndConfig = field(default_factory=FrontEndConfig)
    channel: ChannelConfig = field(default_factory=ChannelConfig.off)
    arousal_weight: float = 0.0  # auxiliary arousal loss (needs model.aux_arousal)
    #: Distillation loss weight: cosine distance between the trunk's distillation head (needs
    #: ``model.distil_dim``) on the augmented crop and the teacher's embedding of the clean
    #: clip (:mod:`streamser.training.teacher`, rendered beforehand).
    distil_weight: float = 0.0
    window_s: float = 2.0
    hop_s: float = 0.5
    crop_s: float | None = None  # training crop length; None = window_s (the model's window)
    epochs: int = 16
    steps_per_epoch: int = 50
    batch_size: int = 64
    lr: float = 3e-3
    weight_decay: float = 5e-4
    label_smoothing: float = 0.1
    metric_loss: str = "triplet"  # "triplet", "siamese" or "none"
    metric_weight: float = 1.0
    corpus_weights: tuple[tuple[str, float], ...] = (("ravdess", 0.6),)
    balance_speakers: bool = False
    #: Speaker-relative training: the share of crops whose band front end subtracts a
    #: *reference* (the mean band spectrum of ``reference_clips`` other crops of the same
    #: speaker, through the same recording chain) instead of the crop's own band mean; see
    #: :meth:`~streamser.training.frontend.LogMel.forward`. 0 = off (the plain band front end).
    reference_p: float = 0.0
    reference_clips: int = 2
    #: Share of reference draws taken from the speaker's neutral clips (an enrolment).
    reference_neutral_p: float = 0.5
    #: Corpus-adversarial weight (domain-adversarial training, Ganin & Lempitsky 2015): a small
    #: classifier learns which training corpus a crop's embedding came from, behind a
    #: gradient-reversal layer, so the trunk learns to hide it (a corpus's speaking style and
    #: studio stop being evidence for a class). Ramped from 0 over training. Training only,
    #: never exported. 0 = off.
    corpus_adv_weight: float = 0.0
    #: Chain-consistency weight: each crop goes through two independent recording chains
    #: (and waveform augmentations); besides the usual losses on both views, the Jensen-Shannon
    #: divergence between their predictions (:func:`~streamser.training.losses.js_consistency`)
    #: is penalised, so a decision does not flip with the microphone, room or noise. Doubles
    #: the rows of each step. 0 = off (one view).
    consistency_weight: float = 0.0
    #: Speaker-identity pretraining (the seed papers' transfer, issue 8 item 4): when > 0,
    #: each batch holds this many distinct speakers with ``batch_size // pretrain_speakers``
    #: crops each (:meth:`~streamser.training.data.ClipSet.draw_speakers`), every crop through
    #: its own recording chain, and the only loss is ``metric_weight`` times the metric loss
    #: on *speaker* identity: no emotion label is read. A later recipe fine-tunes the result
    #: (:data:`~streamser.training.loco.FINETUNE_FROM`). 0 = off (emotion training).
    pretrain_speakers: int = 0
    seed: int = 0
    threads: int = 2

    @property
    def window(self) -> int:
        """Window length in samples."""
        return round(self.window_s * SAMPLE_RATE)

    @property
    def crop(self) -> int:
        """Training crop length in samples."""
        return round((self.crop_s or self.window_s) * SAMPLE_RATE)

    @property
    def hop(self) -> int:
        """Hop in samples."""
        return round(self.hop_s * SAMPLE_RATE)

    def to_json(self) -> dict:
        """JSON-friendly dict of the whole recipe.

        Fields added after a run was trained are left out while they hold their "off"
        value, so that run's checkpoint still matches its recipe and is reused or resumed.
        """
        d = asdict(self)
        for section, switch, keys in _LEFT_OUT_WHEN_OFF:
            part = d[section] if section else d
            if part[switch] == 0:
                for key in keys:
                    part.pop(key)
        return d

    @staticmethod
    def from_json(d: dict) -> TrainConfig:
        """Inverse of :meth:`to_json`."""
        d = dict(d)
        m = d.pop("model")
        model = ModelConfig(**{**m, "blocks": tuple(m["blocks"])})
        aug: dict[str, Any] = {
            k: tuple(v) if isinstance(v, list) else v for k, v in d.pop("augment").items()
        }
        d["corpus_weights"] = tuple(tuple(x) for x in d["corpus_weights"])
        front = FrontEndConfig(**d.pop("frontend", {}))
        chan: dict[str, Any] = {
            k: tuple(v) if isinstance(v, list) else v
            for k, v in d.pop("channel", {"enabled": False}).items()
        }
        return TrainConfig(model=model, augment=AugmentConfig(**aug), frontend=front,
                           channel=ChannelConfig(**chan), **d)


def _metric(cfg: TrainConfig, emb: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    if cfg.metric_loss == "triplet":
        return triplet_semihard_loss(emb, y)
    if cfg.metric_loss == "siamese":
        return siamese_distance_loss(emb, y)
    if cfg.metric_loss == "none":
        return emb.sum() * 0.0
    raise ValueError(f"metric_loss must be triplet, siamese or none, got {cfg.metric_loss!r}")


def load_checkpoint(path: Path | str) -> tuple[SERModel, dict]:
    """A trained model (eval mode) and its saved info (config, labels, temperature...)."""
    state = torch.load(Path(path), map_location="cpu", weights_only=False)
    cfg = TrainConfig.from_json(state["config"])
    model = SERModel(len(state["labels"]), cfg.model, cfg.frontend)
    model.load_state_dict(state["model"])
    model.eval()
    return model, state


def soup_checkpoints(paths: Sequence[Path], out: Path) -> Path:
    """A "model soup": the uniform average of the weights of ``paths``, written to ``out``.

    Averaging weights (not outputs) keeps the size and speed of one model. It only makes sense
    for models fine-tuned from one common base (same architecture, labels and front end), so a
    mismatch in any of those is an error. Integer buffers (batch-norm step counts) are taken
    from the first; the saved config and history are the first's, with ``soup_of`` naming all.
    """
    if len(paths) < 2:
        raise ValueError(f"a soup needs at least two checkpoints, got {len(paths)}")
    states = [torch.load(Path(p), map_location="cpu", weights_only=False) for p in paths]
    first = states[0]
    base = TrainConfig.from_json(first["config"])
    for p, st in zip(paths[1:], states[1:], strict=True):
        cfg = TrainConfig.from_json(st["config"])
        if (st["labels"] != first["labels"] or cfg.model != base.model
                or cfg.frontend != base.frontend or st["model"].keys() != first["model"].keys()):
            raise ValueError(f"{p} cannot be averaged with {paths[0]}: labels, architecture, "
                             "front end or weight names differ (soups need fine-tunes of one "
                             "base)")
    avg = {}
    for key, value in first["model"].items():
        if value.is_floating_point():
            avg[key] = sum(st["model"][key] for st in states) / len(states)
        else:
            avg[key] = value.clone()
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.save({**{k: first[k] for k in ("config", "labels", "history", "temperature")},
                "model": avg, "soup_of": [str(p) for p in paths]}, out)
    return out


def _step(opt: torch.optim.Optimizer, sched: torch.optim.lr_scheduler.LRScheduler,
          loss: torch.Tensor) -> None:
    """One optimiser step on ``loss``, then the learning-rate schedule's."""
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    sched.step()


def _through_a_chain(x: torch.Tensor, channel: ChannelAugment, a: AugmentConfig,
                     g: torch.Generator) -> torch.Tensor:
    """One random recording chain, then the waveform augmentations (babble drawn from the
    batch itself), on every row of ``x`` ``[batch, samples]``."""
    x = channel(x, g)
    pool = x[torch.randperm(len(x), generator=g)] if a.enabled else None
    return augment_waveforms(x, a, g, pool)


def _init_from(model: SERModel, path: Path, labels: tuple[str, ...]) -> None:
    """Transfer: copy every weight of matching name and shape (the arousal head too); the
    emotion head's rows are copied by label name.

    A layer that reads more inputs than the base's (the bottleneck, when a prosody branch is
    added) gets the base's weights on the shared inputs and zeros on the new ones, so the new
    model starts out computing exactly what the base did and learns to use the new inputs.
    """
    src_model, state = load_checkpoint(path)
    src = src_model.state_dict()
    own = model.state_dict()
    for key, value in src.items():
        if key.startswith("head.") or key not in own:
            continue
        mine = own[key]
        if mine.shape == value.shape:
            own[key] = value
        elif (mine.ndim == 2 and value.ndim == 2 and mine.shape[0] == value.shape[0]
              and mine.shape[1] > value.shape[1]):
            widened = torch.zeros_like(mine)
            widened[:, : value.shape[1]] = value
            own[key] = widened
    src_labels = list(state["labels"])
    for row, label in enumerate(labels):
        if label in src_labels:
            own["head.weight"][row] = src["head.weight"][src_labels.index(label)]
            own["head.bias"][row] = src["head.bias"][src_labels.index(label)]
    model.load_state_dict(own)


def _teacher_targets(
    cfg: TrainConfig, model: SERModel, data: ClipSet
) -> tuple[torch.Tensor, torch.Tensor] | None:
    """Teacher embeddings ``[n_clips, D]`` and a mask of clips that have one; ``None`` when
    the recipe does not distil."""
    if cfg.distil_weight <= 0:
        return None
    if model.distil_head is None:
        raise ValueError("distil_weight > 0 needs model.distil_dim > 0 (the distillation head)")
    from streamser.training.teacher import teacher_matrix

    emb, has = teacher_matrix(data.utterances)
    if not has.any():
        raise RuntimeError("distillation: no clip of this run has a teacher embedding; render "
                           "them first: python -m streamser.training.teacher render")
    if emb.shape[1] != cfg.model.distil_dim:
        raise ValueError(f"teacher embeddings have {emb.shape[1]} dimensions, the model's "
                         f"distillation head {cfg.model.distil_dim}")
    log.info("distillation: %d of %d clips have a teacher embedding", int(has.sum()), len(has))
    # Centre on this run's own clips: every voice shares a large common direction in the
    # teacher's space, and the cosine loss should be spent on what tells clips apart.
    emb = emb - emb[has].mean(axis=0)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True).clip(1e-6)
    return torch.from_numpy(emb.astype(np.float32)), torch.from_numpy(has)


def train(
    cfg: TrainConfig,
    data: ClipSet,
    out_dir: Path | str,
    init_from: Path | str | None = None,
    progress: bool = True,
    noise: NoiseBank | None = None,
) -> Path:
    """Train on ``data``; write ``out_dir/model.pt`` (final) and ``out_dir/last.pt`` (resume).

    ``init_from`` is a pretrained ``model.pt`` whose weights start the run (transfer); ``noise``
    is real noise for the channel augmentation (``cfg.channel``). Returns
    the path of ``model.pt``. An existing ``model.pt`` with the same config is reused.
    """
    from tqdm.auto import tqdm

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    final = out / "model.pt"
    if final.exists():
        state = torch.load(final, map_location="cpu", weights_only=False)
        if state["config"] == cfg.to_json() and tuple(state["labels"]) == data.labels:
            log.info("reusing %s (same config)", final)
            return final
    torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    model = SERModel(len(data.labels), cfg.model, cfg.frontend)
    channel = ChannelAugment(cfg.channel, noise)
    if init_from is not None:
        _init_from(model, Path(init_from), data.labels)
    adversary = _CorpusAdversary(cfg, data)
    params = list(model.parameters())
    if adversary.head is not None:
        params += list(adversary.head.parameters())
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    total = cfg.epochs * cfg.steps_per_epoch
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=total,
                                                pct_start=0.15)
    weights = data.sampling_weights(dict(cfg.corpus_weights), cfg.balance_speakers)
    pretraining = cfg.pretrain_speakers > 0
    if pretraining and (cfg.reference_p > 0 or cfg.consistency_weight > 0
                        or cfg.corpus_adv_weight > 0 or cfg.distil_weight > 0):
        raise ValueError(
            "speaker pretraining (pretrain_speakers > 0) learns voices from the crop alone: "
            f"got reference_p={cfg.reference_p}, consistency_weight={cfg.consistency_weight}, "
            f"corpus_adv_weight={cfg.corpus_adv_weight}, distil_weight={cfg.distil_weight}; "
            "set them to 0 in the pretraining recipe")
    teacher = _teacher_targets(cfg, model, data)
    start_epoch = 0
    history: list[dict] = []
    last = out / "last.pt"
    if last.exists():
        ck = torch.load(last, map_location="cpu", weights_only=False)
        if ck["config"] == cfg.to_json():
            model.load_state_dict(ck["model"])
            if adversary.head is not None:
                adversary.head.load_state_dict(ck["adversary"])
            opt.load_state_dict(ck["opt"])
            sched.load_state_dict(ck["sched"])
            start_epoch = ck["epoch"]
            history = ck["history"]
            log.info("resuming %s at epoch %d", last, start_epoch)
    t0 = time.time()
    for epoch in range(start_epoch, cfg.epochs):
        rng = np.random.default_rng([cfg.seed, epoch])
        g = torch.Generator().manual_seed(cfg.seed * 1000 + epoch)
        model.train()
        sums = {"ce": 0.0, "metric": 0.0, "acc": 0.0, "arousal": 0.0, "distil": 0.0,
                "corpus": 0.0, "consistency": 0.0}
        bar = tqdm(range(cfg.steps_per_epoch), desc=f"epoch {epoch + 1}/{cfg.epochs}",
                   disable=not progress, leave=False)
        for step in bar:
            a = cfg.augment
            if pretraining:
                idx, speaker = data.draw_speakers(cfg.pretrain_speakers,
                                                  cfg.batch_size // cfg.pretrain_speakers, rng,
                                                  dict(cfg.corpus_weights))
            else:
                idx = data.draw(cfg.batch_size, rng, weights)
            xb, yb, ab = data.batch_at(idx, cfg.crop, rng,
                                       a.speed if a.enabled else (1.0, 1.0),
                                       a.p_speed if a.enabled else 0.0,
                                       p_codec=cfg.channel.p_codec if cfg.channel.enabled
                                       else 0.0)
            if cfg.reference_p > 0:
                # The references ride in the same row as the crop, so one recording chain
                # (microphone, room, noise) colours both, as it does a live session.
                ridx = data.reference_indices(idx, cfg.reference_clips, rng,
                                              cfg.reference_neutral_p)
                rb, _, _ = data.batch_at(ridx.ravel(), cfg.crop, rng,
                                         a.speed if a.enabled else (1.0, 1.0),
                                         a.p_speed if a.enabled else 0.0)
                xb = np.concatenate([xb, rb.reshape(len(idx), -1)], axis=1)
            y = torch.from_numpy(yb)
            clean = torch.from_numpy(xb)
            views = 2 if cfg.consistency_weight > 0 else 1
            x = torch.cat([_through_a_chain(clean, channel, a, g) for _ in range(views)])
            if views > 1:  # the second view's rows follow the first's, same crops
                y, ab, idx = y.repeat(views), np.tile(ab, views), np.tile(idx, views)
            ref, ref_w = None, None
            if cfg.reference_p > 0:
                ref = model.frontend.band_mean(x[:, cfg.crop:].reshape(-1, cfg.crop))
                ref = ref.view(len(x), cfg.reference_clips, -1).mean(dim=1)
                ref_w = (torch.rand(len(x), generator=g) < cfg.reference_p).float()
                x = x[:, : cfg.crop]
            feats = spec_augment(model.frontend(x, ref, ref_w), a, g)
            logits, emb, distil = model.forward_train(feats, model.prosody_input(x))
            if pretraining:  # speaker identity only: the emotion losses below stay off
                metric = _metric(cfg, emb, torch.from_numpy(speaker))
                _step(opt, sched, cfg.metric_weight * metric)
                sums["metric"] += float(metric.detach())
                continue
            has = y >= 0  # rows with an emotion category (BAVED's low/high levels have none)
            ce = F.cross_entropy(logits[has], y[has], label_smoothing=cfg.label_smoothing)
            metric = _metric(cfg, emb[has], y[has])
            loss = ce + cfg.metric_weight * metric
            if model.arousal_head is not None and cfg.arousal_weight > 0:
                ar = torch.from_numpy(ab)
                known = ar >= 0
                a_loss = F.cross_entropy(model.arousal_head(emb[known] * model.cfg.scale),
                                         ar[known])
                loss = loss + cfg.arousal_weight * a_loss
                sums["arousal"] += float(a_loss.detach())
            if teacher is not None and distil is not None:
                target, known_t = (t[torch.from_numpy(idx)] for t in teacher)
                d_loss = (1.0 - F.cosine_similarity(distil[known_t], target[known_t],
                                                    dim=1)).mean()
                loss = loss + cfg.distil_weight * d_loss
                sums["distil"] += float(d_loss.detach())
            if adversary.head is not None:
                progress_frac = (epoch * cfg.steps_per_epoch + step) / total
                c_loss = adversary.loss(emb * model.cfg.scale, idx, progress_frac)
                loss = loss + c_loss
                sums["corpus"] += float(c_loss.detach())
            if views > 1:
                j_loss = js_consistency(*logits.chunk(views))
                loss = loss + cfg.consistency_weight * j_loss
                sums["consistency"] += float(j_loss.detach())
            _step(opt, sched, loss)
            sums["ce"] += float(ce.detach())
            sums["metric"] += float(metric.detach())
            sums["acc"] += float((logits[has].argmax(1) == y[has]).float().mean())
            bar.set_postfix(ce=f"{sums['ce'] / (bar.n + 1):.3f}")
        stats = {k: v / cfg.steps_per_epoch for k, v in sums.items()}
        stats.update(epoch=epoch + 1, elapsed_s=round(time.time() - t0, 1))
        history.append(stats)
        log.info("epoch %d/%d %s", epoch + 1, cfg.epochs, json.dumps(stats))
        ck = {"config": cfg.to_json(), "model": model.state_dict(), "opt": opt.state_dict(),
              "sched": sched.state_dict(), "epoch": epoch + 1, "history": history}
        if adversary.head is not None:
            ck["adversary"] = adversary.head.state_dict()
        torch.save(ck, last)
    model.eval()
    torch.save({"config": cfg.to_json(), "model": model.state_dict(), "labels": list(data.labels),
                "history": history, "temperature": 1.0}, final)
    return final


class _CorpusAdversary:
    """The corpus classifier of ``cfg.corpus_adv_weight`` (``head`` None when off)."""

    def __init__(self, cfg: TrainConfig, data: ClipSet) -> None:
        corpora = sorted({u.corpus for u in data.utterances})
        self.weight = cfg.corpus_adv_weight
        self.head: torch.nn.Module | None = None
        if self.weight <= 0 or len(corpora) < 2:
            return
        self.corpus_of = torch.tensor([corpora.index(u.corpus) for u in data.utterances])
        self.head = torch.nn.Sequential(torch.nn.Linear(cfg.model.emb_dim, 64),
                                        torch.nn.ReLU(), torch.nn.Linear(64, len(corpora)))

    def loss(self, emb: torch.Tensor, idx: np.ndarray, progress: float) -> torch.Tensor:
        """Cross-entropy of the corpus from ``emb`` behind gradient reversal, whose weight
        ramps ``2 / (1 + exp(-10 p)) - 1`` over training (``progress`` p in 0..1)."""
        assert self.head is not None
        ramp = 2.0 / (1.0 + float(np.exp(-10.0 * progress))) - 1.0
        logits = self.head(grad_reverse(emb, self.weight * ramp))
        return F.cross_entropy(logits, self.corpus_of[torch.from_numpy(idx)])


@dataclass
class ClipScores:
    """Per-clip engine-like scores: window logits and embeddings, plus the true labels.

    ``window_logits[i]`` is ``[n_windows_i, n_labels]``; ``window_emb[i]`` ``[n_windows_i, D]``.
    """

    labels: tuple[str, ...]
    window_logits: list[np.ndarray]
    window_emb: list[np.ndarray]

    def probs(self, temperature: float = 1.0) -> np.ndarray:
        """``[n_clips, n_labels]``: mean over windows of ``softmax(logits / T)``."""
        out = []
        for z in self.window_logits:
            z = z / temperature
            e = np.exp(z - z.max(axis=1, keepdims=True))
            out.append((e / e.sum(axis=1, keepdims=True)).mean(axis=0))
        return np.stack(out)


@torch.no_grad()
def predict_clips(
    model: SERModel,
    clips: list[np.ndarray],
    labels: tuple[str, ...],
    window: int,
    hop: int,
    batch: int = 128,
    progress: bool = False,
) -> ClipScores:
    """Score ``clips`` (float32 16 kHz arrays) window by window as the live engine does."""
    from tqdm.auto import tqdm

    model.eval()
    wins = [engine_windows(c, window, hop) for c in clips]
    counts = [len(w) for w in wins]
    flat = np.concatenate(wins)
    logits, embs = [], []
    for s in tqdm(range(0, len(flat), batch), disable=not progress, desc="predict", leave=False):
        z, e = model(torch.from_numpy(flat[s : s + batch]))
        logits.append(z.numpy())
        embs.append(e.numpy())
    z_all, e_all = np.concatenate(logits), np.concatenate(embs)
    bounds = np.cumsum([0, *counts])
    return ClipScores(
        labels,
        [z_all[a:b] for a, b in itertools.pairwise(bounds)],
        [e_all[a:b] for a, b in itertools.pairwise(bounds)],
    )


def with_epochs(cfg: TrainConfig, epochs: int) -> TrainConfig:
    """A copy of ``cfg`` with another epoch count (for quick ablations)."""
    return replace(cfg, epochs=epochs)
