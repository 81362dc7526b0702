"""Architectures: a compact FaceNet (Inception-ResNet-v1) and a ResNet with statistics pooling.

Both take a standardised log-mel ``[batch, 1, n_mels, frames]`` (any number of frames >= ~32)
and return an L2-normalised embedding ``[batch, emb_dim]``. :class:`SERModel` puts the front end,
a backbone and a classifier head together: ``waveform [batch, samples] -> (logits, embedding)``.

The FaceNet backbone follows Szegedy et al. (2017) Inception-ResNet-v1 as used by FaceNet
(Schroff et al. 2015, davidsandberg/facenet): stem, 5x block35, reduction-A, 10x block17,
reduction-B, 5x block8, global average pooling, bottleneck; channel counts scaled by ``width``
and the 1-channel spectrogram replacing the RGB face. The head is a linear layer on the
*normalised* embedding scaled by ``scale`` (NormFace), so the embedding alone determines the class.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from streamser.training.frontend import FrontEndConfig, LogMel
from streamser.training.pitchgram import Pitchgram

__all__ = [
    "FaceNetSmall", "ModelConfig", "ProsodyNet", "ResNetStats", "SERModel", "build_model",
    "reference_forward",
]


@dataclass(frozen=True)
class ModelConfig:
    """Architecture choice. ``arch`` is ``"facenet"`` or ``"resnet"``."""

    arch: str = "facenet"
    width: float = 0.25
    emb_dim: int = 128
    dropout: float = 0.2
    scale: float = 16.0
    blocks: tuple[int, int, int] = (5, 10, 5)
    #: Training-only auxiliary head: arousal level (low / normal / high) from the embedding.
    #: It is not exported; it shapes the embedding with BAVED's intensity levels.
    aux_arousal: bool = False
    #: Training-only distillation head: predicts a teacher's utterance embedding (this many
    #: dimensions; 0 = none) from the trunk's pooled features. Not exported.
    distil_dim: int = 0
    #: Prosody branch (:class:`ProsodyNet` on a :class:`~streamser.training.pitchgram.Pitchgram`):
    #: its channel count (0 = none). Its pooled features join the trunk's before the bottleneck.
    prosody: int = 0


def _mean_std(x: torch.Tensor) -> torch.Tensor:
    """Statistics pooling: ``[batch, features, frames]`` -> mean and standard deviation over
    frames, ``[batch, 2 * features]``."""
    mean = x.mean(dim=2)
    std = torch.sqrt(((x - mean.unsqueeze(2)) ** 2).mean(dim=2) + 1e-5)
    return torch.cat([mean, std], dim=1)


def _ch(n: int, width: float) -> int:
    return max(8, round(n * width))


class ConvBN(nn.Sequential):
    """Conv2d + BatchNorm + ReLU with 'same'-style padding for odd kernels."""

    def __init__(
        self,
        cin: int,
        cout: int,
        kernel: int | tuple[int, int],
        stride: int | tuple[int, int] = 1,
        relu: bool = True,
    ) -> None:
        k = (kernel, kernel) if isinstance(kernel, int) else kernel
        pad = (k[0] // 2, k[1] // 2)
        layers: list[nn.Module] = [
            nn.Conv2d(cin, cout, k, stride=stride, padding=pad, bias=False),
            nn.BatchNorm2d(cout, eps=1e-3),
        ]
        if relu:
            layers.append(nn.ReLU(inplace=True))
        super().__init__(*layers)


class Block35(nn.Module):
    """Inception-ResNet-A (35x35 grid in the image version)."""

    def __init__(self, c: int, w: float, scale: float = 0.17) -> None:
        super().__init__()
        b = _ch(32, w)
        self.b0 = ConvBN(c, b, 1)
        self.b1 = nn.Sequential(ConvBN(c, b, 1), ConvBN(b, b, 3))
        self.b2 = nn.Sequential(ConvBN(c, b, 1), ConvBN(b, b, 3), ConvBN(b, b, 3))
        self.up = nn.Conv2d(3 * b, c, 1)
        self.scale = scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mixed = torch.cat([self.b0(x), self.b1(x), self.b2(x)], dim=1)
        return F.relu(x + self.scale * self.up(mixed))


class Block17(nn.Module):
    """Inception-ResNet-B with factorised 1x7 / 7x1 convolutions."""

    def __init__(self, c: int, w: float, scale: float = 0.10) -> None:
        super().__init__()
        b = _ch(128, w)
        self.b0 = ConvBN(c, b, 1)
        self.b1 = nn.Sequential(ConvBN(c, b, 1), ConvBN(b, b, (1, 7)), ConvBN(b, b, (7, 1)))
        self.up = nn.Conv2d(2 * b, c, 1)
        self.scale = scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mixed = torch.cat([self.b0(x), self.b1(x)], dim=1)
        return F.relu(x + self.scale * self.up(mixed))


class Block8(nn.Module):
    """Inception-ResNet-C with 1x3 / 3x1 convolutions."""

    def __init__(self, c: int, w: float, scale: float = 0.20, relu: bool = True) -> None:
        super().__init__()
        b = _ch(192, w)
        self.b0 = ConvBN(c, b, 1)
        self.b1 = nn.Sequential(ConvBN(c, b, 1), ConvBN(b, b, (1, 3)), ConvBN(b, b, (3, 1)))
        self.up = nn.Conv2d(2 * b, c, 1)
        self.scale = scale
        self.relu = relu

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = x + self.scale * self.up(torch.cat([self.b0(x), self.b1(x)], dim=1))
        return F.relu(out) if self.relu else out


class ReductionA(nn.Module):
    def __init__(self, c: int, w: float) -> None:
        super().__init__()
        self.b0 = ConvBN(c, _ch(384, w), 3, stride=2)
        m = _ch(192, w)
        self.b1 = nn.Sequential(ConvBN(c, m, 1), ConvBN(m, m, 3), ConvBN(m, _ch(256, w), 3, 2))
        self.pool = nn.MaxPool2d(3, stride=2, padding=1)
        self.out_channels = _ch(384, w) + _ch(256, w) + c

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.b0(x), self.b1(x), self.pool(x)], dim=1)


class ReductionB(nn.Module):
    def __init__(self, c: int, w: float) -> None:
        super().__init__()
        m = _ch(256, w)
        self.b0 = nn.Sequential(ConvBN(c, m, 1), ConvBN(m, _ch(384, w), 3, 2))
        self.b1 = nn.Sequential(ConvBN(c, m, 1), ConvBN(m, m, 3, 2))
        self.b2 = nn.Sequential(ConvBN(c, m, 1), ConvBN(m, m, 3), ConvBN(m, m, 3, 2))
        self.pool = nn.MaxPool2d(3, stride=2, padding=1)
        self.out_channels = _ch(384, w) + 2 * m + c

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.b0(x), self.b1(x), self.b2(x), self.pool(x)], dim=1)


class FaceNetSmall(nn.Module):
    """Inception-ResNet-v1 for 1-channel spectrograms: :meth:`pool` then :meth:`embed` give the
    raw bottleneck; ``extra`` more features (a prosody branch's) may join the pooled ones."""

    def __init__(self, cfg: ModelConfig, extra: int = 0) -> None:
        super().__init__()
        w = cfg.width
        self.stem = nn.Sequential(
            ConvBN(1, _ch(32, w), 3, stride=2),
            ConvBN(_ch(32, w), _ch(32, w), 3),
            ConvBN(_ch(32, w), _ch(64, w), 3),
            nn.MaxPool2d(3, stride=2, padding=1),
            ConvBN(_ch(64, w), _ch(80, w), 1),
            ConvBN(_ch(80, w), _ch(192, w), 3),
            ConvBN(_ch(192, w), _ch(256, w), 3, stride=2),
        )
        c = _ch(256, w)
        n35, n17, n8 = cfg.blocks
        self.repeat1 = nn.Sequential(*[Block35(c, w) for _ in range(n35)])
        self.red_a = ReductionA(c, w)
        c = self.red_a.out_channels
        self.repeat2 = nn.Sequential(*[Block17(c, w) for _ in range(n17)])
        self.red_b = ReductionB(c, w)
        c = self.red_b.out_channels
        self.repeat3 = nn.Sequential(
            *[Block8(c, w) for _ in range(n8 - 1)], Block8(c, w, scale=1.0, relu=False)
        )
        self.pooled_dim = c
        self.dropout = nn.Dropout(cfg.dropout)
        self.bottleneck = nn.Linear(c + extra, cfg.emb_dim, bias=False)
        self.bn = nn.BatchNorm1d(cfg.emb_dim, eps=1e-3)

    def pool(self, x: torch.Tensor) -> torch.Tensor:
        """Log-mel ``[batch, 1, mels, frames]`` -> trunk features ``[batch, pooled_dim]``."""
        x = self.stem(x)
        x = self.repeat3(self.red_b(self.repeat2(self.red_a(self.repeat1(x)))))
        return x.mean(dim=(2, 3))

    def embed(self, pooled: torch.Tensor) -> torch.Tensor:
        """Trunk features (and ``extra`` more) -> raw embedding ``[batch, emb_dim]``."""
        return self.bn(self.bottleneck(self.dropout(pooled)))


class BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.c1 = ConvBN(cin, cout, 3, stride=stride)
        self.c2 = ConvBN(cout, cout, 3, relu=False)
        self.short: nn.Module = (
            ConvBN(cin, cout, 1, stride=stride, relu=False)
            if stride != 1 or cin != cout
            else nn.Identity()
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.c2(self.c1(x)) + self.short(x))


class ResNetStats(nn.Module):
    """ResNet-18 layout (2-2-2-2 basic blocks), stride-2 stem, mean+std pooling over time.

    Channel widths are ``64 * width`` ... ``512 * width``. Frequency is folded into channels
    before pooling, so the statistics keep the spectral layout; any number of frames works.
    """

    def __init__(self, cfg: ModelConfig, n_mels: int = 64, extra: int = 0) -> None:
        super().__init__()
        widths = [_ch(64 * 2**i, cfg.width) for i in range(4)]
        self.stem = ConvBN(1, widths[0], 3, stride=2)
        layers: list[nn.Module] = []
        cin = widths[0]
        for i, cout in enumerate(widths):
            stride = 1 if i == 0 else 2
            layers += [BasicBlock(cin, cout, stride), BasicBlock(cout, cout, 1)]
            cin = cout
        self.body = nn.Sequential(*layers)
        freq = n_mels
        for _ in range(4):  # stem + 3 strided stages, each ceil-halving the mel axis
            freq = (freq + 1) // 2
        self.pooled_dim = 2 * cin * freq
        self.dropout = nn.Dropout(cfg.dropout)
        self.bottleneck = nn.Linear(self.pooled_dim + extra, cfg.emb_dim, bias=False)
        self.bn = nn.BatchNorm1d(cfg.emb_dim, eps=1e-3)

    def pool(self, x: torch.Tensor) -> torch.Tensor:
        """Log-mel ``[batch, 1, mels, frames]`` -> mean and std over time ``[batch, pooled_dim]``.
        """
        x = self.body(self.stem(x))
        return _mean_std(x.flatten(1, 2))  # over [batch, channels * freq, frames]

    def embed(self, pooled: torch.Tensor) -> torch.Tensor:
        """Pooled statistics (and ``extra`` more) -> raw embedding ``[batch, emb_dim]``."""
        return self.bn(self.bottleneck(self.dropout(pooled)))


class ProsodyNet(nn.Module):
    """Pitchgram ``[batch, 2, n_lags, frames]`` -> prosodic features ``[batch, out_dim]``.

    Three small convolutions over (log-F0, time), then the maximum over the F0 axis (so what
    is learned — a ridge's slope, height and steadiness — counts wherever the voice sits, and
    the speaker's pitch level is not read as an emotion), then the mean and standard deviation
    over time.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        half = max(8, channels // 2)
        self.convs = nn.Sequential(
            ConvBN(2, half, 3, stride=(1, 2)),
            ConvBN(half, channels, 3, stride=(2, 2)),
            ConvBN(channels, channels, 3),
        )
        self.out_dim = 2 * channels

    def forward(self, pitchgram: torch.Tensor) -> torch.Tensor:
        return _mean_std(self.convs(pitchgram).amax(dim=2))  # over [batch, channels, frames/4]


class SERModel(nn.Module):
    """Front end + backbone + head. ``forward(waveform) -> (logits, embedding)``.

    ``waveform`` is ``[batch, samples]`` float32 at 16 kHz; ``embedding`` is L2-normalised.
    :meth:`forward_features` lets training insert SpecAugment between front end and backbone.
    With ``cfg.prosody`` a :class:`ProsodyNet` reads the waveform's pitchgram
    (:meth:`prosody_input`) and its features join the trunk's before the bottleneck.
    """

    def __init__(
        self, n_classes: int, cfg: ModelConfig, frontend: FrontEndConfig | None = None
    ) -> None:
        super().__init__()
        self.cfg = cfg
        self.frontend = LogMel(frontend)
        self.pitchgram = Pitchgram() if cfg.prosody else None
        self.prosody = ProsodyNet(cfg.prosody) if cfg.prosody else None
        extra = self.prosody.out_dim if self.prosody is not None else 0
        if cfg.arch == "facenet":
            self.backbone: FaceNetSmall | ResNetStats = FaceNetSmall(cfg, extra)
        elif cfg.arch == "resnet":
            self.backbone = ResNetStats(cfg, self.frontend.cfg.n_mels, extra)
        else:
            raise ValueError(f"unknown arch {cfg.arch!r}; use 'facenet' or 'resnet'")
        self.head = nn.Linear(cfg.emb_dim, n_classes)
        self.arousal_head = nn.Linear(cfg.emb_dim, 3) if cfg.aux_arousal else None
        self.distil_head = (nn.Linear(self.backbone.pooled_dim, cfg.distil_dim)
                            if cfg.distil_dim else None)

    def prosody_input(self, waveform: torch.Tensor) -> torch.Tensor | None:
        """The pitchgram of ``waveform`` ``[batch, samples]``, or ``None`` without a branch."""
        return self.pitchgram(waveform) if self.pitchgram is not None else None

    def _pooled(
        self, feats: torch.Tensor, pitchgram: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(trunk features, everything the bottleneck reads)``."""
        pooled = self.backbone.pool(feats)
        if self.prosody is None:
            return pooled, pooled
        if pitchgram is None:
            raise ValueError("this model has a prosody branch: pass the waveform's pitchgram "
                             "(SERModel.prosody_input) with the log-mel features")
        return pooled, torch.cat([pooled, self.prosody(pitchgram)], dim=1)

    def forward_features(
        self, feats: torch.Tensor, pitchgram: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Log-mel ``[batch, 1, n_mels, frames]`` (and the pitchgram, with a prosody branch)
        -> (logits, L2-normalised embedding)."""
        return self._classify(self.backbone.embed(self._pooled(feats, pitchgram)[1]))

    def _classify(self, raw_emb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        emb = F.normalize(raw_emb, dim=1)
        return self.head(emb * self.cfg.scale), emb

    def forward_train(
        self, feats: torch.Tensor, pitchgram: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """Like :meth:`forward_features`, plus the distillation head's output (or ``None``)."""
        trunk, pooled = self._pooled(feats, pitchgram)
        logits, emb = self._classify(self.backbone.embed(pooled))
        distil = self.distil_head(trunk) if self.distil_head is not None else None
        return logits, emb, distil

    def forward(
        self,
        waveform: torch.Tensor,
        reference: torch.Tensor | None = None,
        ref_weight: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        return self.forward_features(self.frontend(waveform, reference, ref_weight),
                                     self.prosody_input(waveform))


def reference_forward(
    model: SERModel, waveform: torch.Tensor, reference: torch.Tensor, ref_weight: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(logits, embedding, band mean [batch, n_mels])`` with a voice reference applied (see
    :meth:`~streamser.training.frontend.LogMel.features`): the exported graph's computation."""
    feats, band_mean = model.frontend.features(waveform, reference, ref_weight)
    logits, emb = model.forward_features(feats, model.prosody_input(waveform))
    return logits, emb, band_mean


def build_model(n_classes: int, cfg: ModelConfig) -> SERModel:
    """Construct a :class:`SERModel` with the default front end."""
    return SERModel(n_classes, cfg)
