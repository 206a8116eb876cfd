"""The regionally guided network of Son et al. (§2.2–2.3): one network per finding.

Layout (input S × S, ``width`` = w base channels):

    stem      3×3 conv, BN, ReLU (stride 1, w)                               S
    stage i   residual unit(s) [6] then a reduction layer:                  S / 2^i
              3×3 conv stride 2, BN, ReLU, depth doubled (w·2^i)            for i = 1..4
    pooling   the four reduction layers average-pooled to the 4th's size (S/16) and concatenated
    atrous    parallel 3×3 convs with the size class's dilation rates (each BN, ReLU), concatenated
    1×1 conv  to one channel: logits z; activation map A = sigmoid(z), S/16 × S/16
    existence y = sigmoid(GAP(z)); small findings max-pool z (``small_pool`` × ``small_pool``) first

With ``fov_mask`` (our addition) the map lives inside the fundus only: outside the field of view z
is fixed very low and GAP averages over the fundus. Without it the black corners, identical in
every photo, become a free bias: they saturate at A ≈ 1, where eq. 2's gradient vanishes
(d log σ(z)/dz = 1 − σ(z)), so guidance can no longer pull them down and AIR counts them.

Three more additions of ours close the two ways the network escaped eq. 2 on IDRiD (measured in
docs/benchmarks.md; ``GuidedConfig.as_published()`` drops all four):
- ``existence_floor``: GAP sees each logit z through a soft floor, f + softplus(z − f) with
  f = log(ε/(1 − ε)), the logit below which eq. 2's clamp stops acting. Without it the logits
  below f are free of guidance yet still move GAP: the network told photos apart there, out of
  sight of the map and of AIR.
- ``existence_intercept``: a learnt scalar added after GAP. A photo whose lesions the network
  cannot see needs a prior near the base rate; without an intercept the network made one from a
  band of saturated cells along the fundus's cut-off top edge, in every photo.
- ``saturation_hinge``: guidance adds (1 − m)·max(z, 0), so a saturated cell outside the cue is
  still pulled down (eq. 2 alone gives it (1 − A) ≈ 0) and the band cannot stay once it is useless.

For the paper's 512 × 512 input the activation map is 32 × 32 (four halvings after a stride-1
stem). Concatenating the atrous branches before the 1×1 conv equals summing a 1×1 projection of
each branch, which is DeepLab's fusion of its pyramid [2].
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from annotate.fov import BLACK_PIXEL_LEVEL

# §2.2: dilation rates by the finding's size class (storage/catalogue.py's FindingSpec.size_class).
ATROUS_RATES: dict[str, tuple[int, ...]] = {"large": (1, 2, 4, 8), "medium": (1, 2, 4), "small": (1, 2)}
REDUCTIONS = 4                 # first four reduction layers feed the pyramid
GUIDANCE_EPSILON = 1e-3        # §3.1, ε in eq. 2
GUIDANCE_WEIGHT = 1.0          # §3.1, λ in eq. 3; 0 trains the unguided ablation
FOV_LEVEL = BLACK_PIXEL_LEVEL / 255   # brighter than this in some channel: inside the fundus (input in [0, 1])
OUTSIDE_LOGIT = -20.0          # sigmoid ≈ 2e-9: no activation outside the fundus
PAPER_INPUT_SIZE = 512


@dataclass
class GuidedConfig:
    finding: str = "haemorrhage"
    size_class: str = "small"
    input_size: int = PAPER_INPUT_SIZE
    width: int = 8                  # channels of the stem; stage i has width·2^i
    residual_units: int = 1         # per stage, before its reduction layer
    atrous_channels: int = 32       # per pyramid branch
    small_pool: int = 4             # max-pool kernel before GAP for small findings
    guidance_weight: float = GUIDANCE_WEIGHT
    epsilon: float = GUIDANCE_EPSILON
    fov_mask: bool = True           # activation only inside the fundus (see the module docstring)
    existence_floor: bool = True    # GAP sees no logit below ε's (see the module docstring)
    existence_intercept: bool = True    # a learnt scalar added after GAP (see the module docstring)
    saturation_hinge: bool = True   # guidance keeps pulling saturated cells outside the cue
    soft_cue: bool = True           # cue M as each cell's covered fraction; False: the paper's binary M

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_saved(cls, values: dict) -> GuidedConfig:
        """The config saved with a model; a model saved before one of our additions existed ran without it."""
        known = {f: v for f, v in values.items() if f in cls.__dataclass_fields__}
        return cls(**{"fov_mask": False, "existence_floor": False, "existence_intercept": False,
                      "saturation_hinge": False, **known})

    def as_published(self) -> GuidedConfig:
        """The same network without our four additions and with the paper's binary cue M: the
        paper's architecture and loss as written."""
        return GuidedConfig(**{**self.to_dict(), "fov_mask": False, "existence_floor": False,
                               "existence_intercept": False, "saturation_hinge": False, "soft_cue": False})

    @property
    def map_size(self) -> int:
        return self.input_size // 2**REDUCTIONS


class ResidualUnit(nn.Module):
    """He et al.'s basic block: two 3×3 conv–BN, identity shortcut, ReLU after the sum."""

    def __init__(self, channels: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, channels, 3, padding=1, bias=False), nn.BatchNorm2d(channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(channels, channels, 3, padding=1, bias=False), nn.BatchNorm2d(channels))

    def forward(self, x: Tensor) -> Tensor:
        return F.relu(x + self.body(x))


def _conv_bn_relu(inputs: int, outputs: int, stride: int = 1, dilation: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(inputs, outputs, 3, stride=stride, padding=dilation, dilation=dilation, bias=False),
        nn.BatchNorm2d(outputs), nn.ReLU(inplace=True))


class GuidedNet(nn.Module):
    """Returns ``(existence_logit [N], activation_map [N, 1, S/16, S/16])``."""

    def __init__(self, config: GuidedConfig):
        super().__init__()
        if config.size_class not in ATROUS_RATES:
            raise ValueError(f"size_class must be one of {sorted(ATROUS_RATES)}")
        if config.input_size % 2**REDUCTIONS:
            raise ValueError(f"input_size must be a multiple of {2**REDUCTIONS}")
        self.config = config
        width = config.width
        self.stem = _conv_bn_relu(3, width)
        self.stages = nn.ModuleList()
        channels = width
        for _ in range(REDUCTIONS):
            units = [ResidualUnit(channels) for _ in range(config.residual_units)]
            self.stages.append(nn.Sequential(*units, _conv_bn_relu(channels, channels * 2, stride=2)))
            channels *= 2
        concatenated = sum(width * 2**i for i in range(1, REDUCTIONS + 1))
        self.rates = ATROUS_RATES[config.size_class]
        self.pyramid = nn.ModuleList(
            _conv_bn_relu(concatenated, config.atrous_channels, dilation=rate) for rate in self.rates)
        self.to_map = nn.Conv2d(config.atrous_channels * len(self.rates), 1, 1)
        self.small_pool = config.small_pool if config.size_class == "small" else 1
        if config.existence_intercept:
            self.intercept = nn.Parameter(torch.zeros(1))
        _xavier(self)

    def forward(self, image: Tensor) -> tuple[Tensor, Tensor]:
        existence_logit, map_logits = self.forward_logits(image)
        return existence_logit, torch.sigmoid(map_logits)

    def forward_logits(self, image: Tensor) -> tuple[Tensor, Tensor]:
        """``(existence_logit [N], map logits z [N, 1, S/16, S/16])``: A = sigmoid(z)."""
        x = self.stem(image)
        reductions = []
        for stage in self.stages:
            x = stage(x)
            reductions.append(x)
        size = reductions[-1].shape[-2:]
        pooled = [F.adaptive_avg_pool2d(r, size) for r in reductions]
        features = torch.cat(pooled, dim=1)
        logits = self.to_map(torch.cat([branch(features) for branch in self.pyramid], dim=1))
        if self.config.fov_mask:
            inside = F.adaptive_avg_pool2d((image.amax(1, keepdim=True) > FOV_LEVEL).to(logits.dtype),
                                           logits.shape[-2:]) > 0.5
            logits = logits.masked_fill(~inside, OUTSIDE_LOGIT)
        else:
            inside = torch.ones_like(logits, dtype=torch.bool)
        if self.config.existence_floor:
            floor = math.log(self.config.epsilon / (1 - self.config.epsilon))
            existence_input = floor + F.softplus(logits - floor)
        else:
            existence_input = logits
        if self.small_pool > 1:
            logits_pooled = F.max_pool2d(existence_input, self.small_pool, ceil_mode=True)
            inside_pooled = F.max_pool2d(inside.to(logits.dtype), self.small_pool, ceil_mode=True) > 0
        else:
            logits_pooled, inside_pooled = existence_input, inside
        weight = inside_pooled.to(logits.dtype)
        existence_logit = (logits_pooled * weight).sum(dim=(1, 2, 3)) / weight.sum(dim=(1, 2, 3)).clamp(min=1)
        if self.config.existence_intercept:
            existence_logit = existence_logit + self.intercept
        return existence_logit, logits


def _xavier(module: nn.Module) -> None:
    """§3.1: weights and biases start from Xavier initialisation (biases at zero)."""
    for layer in module.modules():
        if isinstance(layer, nn.Conv2d):
            nn.init.xavier_uniform_(layer.weight)
            if layer.bias is not None:
                nn.init.zeros_(layer.bias)
        elif isinstance(layer, nn.BatchNorm2d):
            nn.init.ones_(layer.weight)
            nn.init.zeros_(layer.bias)


def guidance_loss(activation: Tensor, cue: Tensor, epsilon: float = GUIDANCE_EPSILON,
                  cue_complete: Tensor | None = None) -> Tensor:
    """Eq. 2: mean over the batch and the map's pixels of (1 − m)·log(max(a, ε)).

    Its value is ≤ 0; minimising it drives activation outside the cue (m = 0) down to ε and leaves
    activation inside the cue free. ``activation`` and ``cue`` are (N, 1, H, W) or (N, H, W).
    Samples whose ``cue_complete`` (N,) is 0 add nothing: outside their cue is unknown, not clear.
    """
    activation = activation.float().reshape(cue.shape)
    return (_guided_cells(cue, cue_complete) * torch.log(torch.clamp(activation, min=epsilon))).mean()


def _guided_cells(cue: Tensor, cue_complete: Tensor | None) -> Tensor:
    """1 − m, zeroed for samples whose cue is incomplete: the cells guidance acts on."""
    outside = 1 - cue.float()
    if cue_complete is not None:
        outside = outside * cue_complete.float().reshape(-1, *[1] * (cue.dim() - 1))
    return outside


def saturation_hinge(map_logits: Tensor, cue: Tensor, cue_complete: Tensor | None = None) -> Tensor:
    """Mean of (1 − m)·max(z, 0): added to eq. 2 it keeps a cell's gradient at ≥ 1 once A > 0.5,
    where eq. 2's own (1 − A) fades, so a saturated cell outside the cue cannot escape guidance."""
    map_logits = map_logits.float().reshape(cue.shape)
    return (_guided_cells(cue, cue_complete) * F.relu(map_logits)).mean()


def classification_loss(existence_logit: Tensor, present: Tensor) -> Tensor:
    """Eq. 1, binary cross-entropy on y_pred = sigmoid(logit), computed stably from the logit."""
    return F.binary_cross_entropy_with_logits(existence_logit.float(), present.float())


def total_loss(existence_logit: Tensor, map_logits: Tensor, present: Tensor, cue: Tensor,
               guidance_weight: float = GUIDANCE_WEIGHT, epsilon: float = GUIDANCE_EPSILON,
               cue_complete: Tensor | None = None, hinge: bool = False) -> tuple[Tensor, dict[str, float]]:
    """Eq. 3: L_class + λ·L_guide (plus ``saturation_hinge`` when ``hinge``); returns the loss and
    its parts for the progress display."""
    classification = classification_loss(existence_logit, present)
    guidance = guidance_loss(torch.sigmoid(map_logits.float()), cue, epsilon, cue_complete)
    if hinge:
        guidance = guidance + saturation_hinge(map_logits, cue, cue_complete)
    total = classification + guidance_weight * guidance if guidance_weight else classification
    return total, {"class_loss": float(classification.detach()), "guide_loss": float(guidance.detach())}


def guided_train_config(**changes):
    """Engine settings of §3.1: SGD with Nesterov momentum 0.9, decaying rate, batch 32, keep the
    model with the lowest validation loss and stop when it stagnates. The base rate and decay are
    not given in the paper; 0.01 × 0.95 per epoch trains these narrow networks stably."""
    from models.engine.training import TrainConfig

    defaults = dict(epochs=60, batch_size=32, lr=0.01, optimizer="sgd", momentum=0.9, nesterov=True,
                    weight_decay=1e-4, scheduler="exponential", gamma=0.95, monitor="val_loss",
                    monitor_mode="min", early_stopping_patience=8)
    return TrainConfig(**{**defaults, **changes})


# §3.1 names the kinds of augmentation, not their ranges; these are moderate for fundus photos.
GUIDED_AUGMENTATION: dict[str, Any] = dict(rotation_deg=20.0, shift=0.05, scale=0.1, shear_deg=5.0, flip=True,
                           vertical_flip=True, intensity=0.2)


class GuidedTask:
    """A ``TrainingTask`` for one finding; datasets yield (image, present, cue, cue complete) (finding_data)."""

    def __init__(self, config: GuidedConfig, train_set, validation_set, augment: bool = True):
        self.config, self.train_set, self.validation_set, self.augment = config, train_set, validation_set, augment

    def build_model(self) -> GuidedNet:
        return GuidedNet(self.config)

    def datasets(self):
        return self.train_set, self.validation_set

    def loss(self, model, batch, device):
        images, present, cues, complete = (t.to(device, non_blocking=True) for t in batch)
        if self.augment:
            images, cues = _augment(images, cues)
        cues = cue_as_configured(cues, self.config.soft_cue)
        logit, map_logits = model.forward_logits(images)
        return total_loss(logit, map_logits, present, cues, self.config.guidance_weight, self.config.epsilon,
                          complete, self.config.saturation_hinge)

    def validate(self, model, loader, device) -> dict[str, float]:
        outputs = predict(model, loader, device)
        outputs["cues"] = cue_as_configured(torch.from_numpy(outputs["cues"]), self.config.soft_cue).numpy()
        loss, _ = total_loss(torch.from_numpy(outputs["logits"]), torch.from_numpy(outputs["map_logits"]),
                             torch.from_numpy(outputs["present"]), torch.from_numpy(outputs["cues"]),
                             self.config.guidance_weight, self.config.epsilon,
                             torch.from_numpy(outputs["cue_complete"]), self.config.saturation_hinge)
        return {"val_loss": float(loss), **{f"val_{k}": v for k, v in finding_metrics(outputs, self.config.soft_cue).items()}}

    def task_config(self) -> dict:
        return {"network": "guided", **self.config.to_dict(), "augmentation": GUIDED_AUGMENTATION}


def cue_as_configured(cues: Tensor, soft: bool) -> Tensor:
    """The cue M the loss sees: covered fractions, or the paper's binary M, where every cell a
    marked region touches counts as marked (so guidance never pulls down a cell holding part of
    a region). Applied after augmentation, whose interpolation softens any cue."""
    return cues if soft else (cues > 0).to(cues.dtype)


def _augment(images: Tensor, cues: Tensor) -> tuple[Tensor, Tensor]:
    from models.findings.data import random_affine

    moved, moved_cues = random_affine(images, cues, **GUIDED_AUGMENTATION)
    assert moved_cues is not None   # given cues, random_affine moves them with the images
    return moved, moved_cues


def predict(model: GuidedNet, loader, device) -> dict:
    """Logits, probabilities and activation maps of a whole loader, as numpy arrays."""
    import numpy as np

    model.eval()
    parts: dict[str, list] = {"logits": [], "map_logits": [], "present": [], "cues": [], "cue_complete": []}
    with torch.no_grad():
        for images, present, cues, complete in loader:
            logit, map_logits = model.forward_logits(images.to(device))
            parts["logits"].append(logit.float().cpu())
            parts["map_logits"].append(map_logits.float().cpu()[:, 0])
            parts["present"].append(present.float())
            parts["cues"].append(cues.float())
            parts["cue_complete"].append(complete.float())
    out = {k: torch.cat(v).numpy() if v else np.zeros(0, np.float32) for k, v in parts.items()}
    out["probabilities"] = 1 / (1 + np.exp(-out["logits"]))
    out["activations"] = torch.sigmoid(torch.from_numpy(out["map_logits"])).numpy()
    return out


def finding_metrics(outputs: dict, soft_cue: bool = True) -> dict[str, float]:
    """AUROC, sensitivity/specificity at the best harmonic mean, AIR on TP and FN (§3.1, Table 1).

    AIR is measured against the cue M the network was trained with: ``soft_cue=False`` (the paper's
    network as published) binarises ``outputs["cues"]`` as ``cue_as_configured`` does, so a cell a
    region touches counts whole, as in the paper's AIR."""
    from models.metrics.classification import air_by_outcome, auroc, best_operating_point

    if not soft_cue:
        outputs = {**outputs, "cues": cue_as_configured(torch.as_tensor(outputs["cues"]), soft=False).numpy()}
    scores, labels = outputs["probabilities"], outputs["present"]
    point = best_operating_point(scores, labels)
    complete = outputs.get("cue_complete")
    complete = None if complete is None else complete > 0.5
    air = air_by_outcome(outputs["activations"], outputs["cues"], scores, labels, point.threshold, complete)
    if complete is not None and not complete.all():   # box cues: AIR there is a lower bound
        box = air_by_outcome(outputs["activations"], outputs["cues"], scores, labels, point.threshold, ~complete)
        air.update({f"{key}_box": value for key, value in box.items()})
    return {"auroc": auroc(scores, labels), "sensitivity": point.sensitivity,
            "specificity": point.specificity, "threshold": point.threshold, **air}
