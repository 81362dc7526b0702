"""Metric losses on L2-normalised embeddings, used beside cross-entropy.

- :func:`triplet_semihard_loss`: FaceNet's triplet loss (Schroff et al. 2015) with online
  semi-hard mining inside the batch, as in TensorFlow Addons ``triplet_semihard_loss``: for every
  anchor-positive pair, the negative is the closest one that is still farther than the positive;
  when no such negative exists, the farthest negative is used.
- :func:`siamese_distance_loss`: the Siamese contrastive distance loss (Hadsell et al. 2006):
  same-class pairs are pulled together, different-class pairs pushed beyond a margin.

Distances are squared Euclidean between unit vectors (range 0..4).

:func:`grad_reverse` is the gradient-reversal layer of domain-adversarial training, used to make
the embedding uninformative about which corpus a crop came from.
"""

from __future__ import annotations

import torch

__all__ = [
    "grad_reverse", "js_consistency", "pairwise_sq_dist", "siamese_distance_loss",
    "triplet_semihard_loss",
]


def pairwise_sq_dist(emb: torch.Tensor) -> torch.Tensor:
    """Squared Euclidean distances ``[batch, batch]`` between rows of ``emb``."""
    sq = (emb * emb).sum(dim=1)
    dist = sq.unsqueeze(1) + sq.unsqueeze(0) - 2.0 * emb @ emb.t()
    return dist.clamp_min(0.0)


def triplet_semihard_loss(
    emb: torch.Tensor, labels: torch.Tensor, margin: float = 0.2
) -> torch.Tensor:
    """Mean semi-hard triplet loss over all anchor-positive pairs of the batch.

    Returns 0 (with a gradient path) when the batch has no anchor-positive pair.
    """
    dist = pairwise_sq_dist(emb)
    same = labels.unsqueeze(0) == labels.unsqueeze(1)
    eye = torch.eye(len(labels), dtype=torch.bool, device=emb.device)
    pos_mask = same & ~eye
    neg_mask = ~same
    if not bool(pos_mask.any()) or not bool(neg_mask.any()):
        return emb.sum() * 0.0
    # d_ap[a, p] against d_an[a, n] -> [a, p, n]
    d_ap = dist.unsqueeze(2)
    d_an = dist.unsqueeze(1)
    big = torch.finfo(dist.dtype).max / 4
    semihard = neg_mask.unsqueeze(1) & (d_an > d_ap)
    closest_semihard = torch.where(semihard, d_an.expand_as(semihard), big).amin(dim=2)
    farthest = torch.where(neg_mask, dist, -big).amax(dim=1, keepdim=True).expand_as(dist)
    has_semihard = semihard.any(dim=2)
    d_neg = torch.where(has_semihard, closest_semihard, farthest)
    losses = (dist - d_neg + margin).clamp_min(0.0)
    return losses[pos_mask].mean()


def siamese_distance_loss(
    emb: torch.Tensor, labels: torch.Tensor, margin: float = 1.0
) -> torch.Tensor:
    """Contrastive loss over all pairs: ``d`` for same class, ``max(0, m - d)`` otherwise."""
    dist = pairwise_sq_dist(emb)
    same = labels.unsqueeze(0) == labels.unsqueeze(1)
    eye = torch.eye(len(labels), dtype=torch.bool, device=emb.device)
    pos = dist[same & ~eye]
    neg = (margin - dist[~same]).clamp_min(0.0)
    terms = [t.mean() for t in (pos, neg) if t.numel()]
    return torch.stack(terms).sum() if terms else emb.sum() * 0.0


class _GradReverse(torch.autograd.Function):
    @staticmethod
    def forward(ctx: torch.autograd.function.FunctionCtx, x: torch.Tensor,
                weight: float) -> torch.Tensor:
        ctx.weight = weight  # type: ignore[attr-defined]
        return x.view_as(x)

    @staticmethod
    def backward(ctx: torch.autograd.function.FunctionCtx,
                 grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        return -ctx.weight * grad, None  # type: ignore[attr-defined]


def grad_reverse(x: torch.Tensor, weight: float) -> torch.Tensor:
    """Identity forward; the gradient is multiplied by ``-weight`` on the way back (Ganin &
    Lempitsky 2015): a classifier behind it learns, the layers before it learn to defeat it."""
    return _GradReverse.apply(x, weight)


def js_consistency(logits_a: torch.Tensor, logits_b: torch.Tensor) -> torch.Tensor:
    """Mean Jensen-Shannon divergence (nats, in [0, ln 2]) between the class distributions of
    two views of the same crops, rows paired: 0 when both views get the same prediction.

    Trained against it, a model's decision stops depending on which recording chain a crop
    went through (Hendrycks et al. 2020, AugMix's consistency loss), not only its accuracy.
    """
    p = torch.softmax(logits_a, dim=1)
    q = torch.softmax(logits_b, dim=1)
    log_m = torch.log((0.5 * (p + q)).clamp_min(1e-7))
    kl_pm = (p * (torch.log(p.clamp_min(1e-7)) - log_m)).sum(dim=1)
    kl_qm = (q * (torch.log(q.clamp_min(1e-7)) - log_m)).sum(dim=1)
    return (0.5 * (kl_pm + kl_qm)).mean()
