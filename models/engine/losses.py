"""Segmentation losses, each a small ``nn.Module`` with its formula and source.

All take raw logits ``(B, C, H, W)`` and targets of the same shape in [0, 1] and return a scalar.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

# Jithesh et al. (attention-deeplab-lesions, III-D): combined-loss weights and constants.
LESION_LOSS_WEIGHTS = {"dice": 1.0, "bce": 0.5, "focal": 1.0, "boundary": 0.5}
FOCAL_ALPHA, FOCAL_GAMMA = 0.25, 2.0
BOUNDARY_THETA = 1.5
DICE_EPS = 1e-6   # Andrikevych et al. section 2: ε = 1e-6


class DiceLoss(nn.Module):
    """1 − Dice per channel, averaged over channels (Jithesh eq. 3–4; Andrikevych section 2):
    Dice = (2 Σ p·t + ε) / (Σ p + Σ t + ε), sums over the batch and all pixels of the channel, so
    a crop without any lesion of a kind does not dominate the loss."""

    def __init__(self, eps: float = DICE_EPS):
        super().__init__()
        self.eps = eps

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        prob = torch.sigmoid(logits.float())
        dims = (0, 2, 3)
        intersection = (prob * target).sum(dims)
        dice = (2 * intersection + self.eps) / (prob.sum(dims) + target.sum(dims) + self.eps)
        return 1 - dice.mean()


class BCELoss(nn.Module):
    """Binary cross-entropy on logits (Jithesh eq. 1), mean over pixels; ``pos_weight`` per channel
    up-weights rare positives (haemorrhages stay under-predicted otherwise, as first trials on IDRiD showed)."""

    pos_weight: torch.Tensor | None   # a buffer: moves with the module's device

    def __init__(self, pos_weight: list[float] | None = None):
        super().__init__()
        self.register_buffer("pos_weight", None if pos_weight is None else torch.tensor(pos_weight).view(-1, 1, 1))

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return F.binary_cross_entropy_with_logits(logits.float(), target, pos_weight=self.pos_weight)


class FocalLoss(nn.Module):
    """Focal loss (Lin et al.; Jithesh eq. 2): −α_t (1 − p_t)^γ log p_t with p_t = p where y = 1
    and 1 − p where y = 0, α_t = α for positives and 1 − α for negatives; mean over pixels."""

    def __init__(self, alpha: float = FOCAL_ALPHA, gamma: float = FOCAL_GAMMA):
        super().__init__()
        self.alpha, self.gamma = alpha, gamma

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        logits = logits.float()
        ce = F.binary_cross_entropy_with_logits(logits, target, reduction="none")   # −log p_t
        prob = torch.sigmoid(logits)
        p_t = prob * target + (1 - prob) * (1 - target)
        alpha_t = self.alpha * target + (1 - self.alpha) * (1 - target)
        return (alpha_t * (1 - p_t) ** self.gamma * ce).mean()


def sobel_magnitude(mask: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """‖∇T‖ = sqrt((∇x T)² + (∇y T)² + ε) with 3 × 3 Sobel kernels (Jithesh eq. 6), per channel;
    borders replicated so the image edge is not mistaken for a lesion edge."""
    kx = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]], device=mask.device)
    channels = mask.shape[1]
    weight = torch.stack([kx, kx.t()]).unsqueeze(1).repeat(channels, 1, 1, 1)   # (2C, 1, 3, 3)
    padded = F.pad(mask.float(), (1, 1, 1, 1), mode="replicate")
    grad = F.conv2d(padded, weight, groups=channels)
    gx, gy = grad[:, 0::2], grad[:, 1::2]
    return torch.sqrt(gx ** 2 + gy ** 2 + eps)


class BoundaryLoss(nn.Module):
    """Boundary loss as printed in Jithesh eq. 5: per-pixel BCE × exp(−θ ‖∇T‖), mean over pixels.

    The text around eq. 5 says boundaries get *more* attention, while the printed weight
    exp(−θ‖∇T‖) is smallest on boundaries; we implement the equation (bounded weights in (0, 1]),
    which makes this term the BCE of the lesion interiors and of the background away from edges."""

    def __init__(self, theta: float = BOUNDARY_THETA):
        super().__init__()
        self.theta = theta

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        ce = F.binary_cross_entropy_with_logits(logits.float(), target, reduction="none")
        weight = torch.exp(-self.theta * sobel_magnitude(target))
        return (ce * weight).mean()


class BCEDiceLoss(nn.Module):
    """L = BCE + (1 − Dice) (Andrikevych et al. section 2; vessels and disc/cup)."""

    def __init__(self, pos_weight: list[float] | None = None):
        super().__init__()
        self.bce, self.dice = BCELoss(pos_weight), DiceLoss()

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return self.bce(logits, target) + self.dice(logits, target)


@dataclass
class LesionLossConfig:
    dice: float = LESION_LOSS_WEIGHTS["dice"]
    bce: float = LESION_LOSS_WEIGHTS["bce"]
    focal: float = LESION_LOSS_WEIGHTS["focal"]
    boundary: float = LESION_LOSS_WEIGHTS["boundary"]
    focal_alpha: float = FOCAL_ALPHA
    focal_gamma: float = FOCAL_GAMMA
    boundary_theta: float = BOUNDARY_THETA
    pos_weight: list[float] | None = None


class LesionLoss(nn.Module):
    """L = w_dice·L_dice + w_bce·L_bce + w_focal·L_focal + w_boundary·L_boundary (Jithesh eq. 1 of
    III-D, weights 1.0, 0.5, 1.0, 0.5). ``terms(...)`` returns each term for logging."""

    def __init__(self, config: LesionLossConfig | None = None):
        super().__init__()
        self.config = config or LesionLossConfig()
        c = self.config
        self.dice, self.bce = DiceLoss(), BCELoss(c.pos_weight)
        self.focal, self.boundary = FocalLoss(c.focal_alpha, c.focal_gamma), BoundaryLoss(c.boundary_theta)

    def terms(self, logits: torch.Tensor, target: torch.Tensor) -> dict[str, torch.Tensor]:
        return {name: getattr(self, name)(logits, target) for name in ("dice", "bce", "focal", "boundary")}

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        terms = self.terms(logits, target)
        return sum(getattr(self.config, name) * value for name, value in terms.items())


class SpatialSoftmaxLoss(nn.Module):
    """Cross-entropy between the softmax of each channel over all pixels and a target heatmap
    normalised to sum 1 (the landmark locator: one disc and one fovea per photo)."""

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        b, c = logits.shape[:2]
        log_prob = F.log_softmax(logits.float().reshape(b, c, -1), dim=-1)
        q = target.reshape(b, c, -1)
        q = q / q.sum(-1, keepdim=True).clamp_min(1e-12)
        return -(q * log_prob).sum(-1).mean()
