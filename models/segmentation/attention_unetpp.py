"""Attention U-Net++ with a ResNet encoder (Andrikevych et al., attention-unetpp-vessels, section 2).

U-Net++ (Zhou et al.) nests dense skip paths: node X(i, j) at depth i after j up-steps sees every
earlier node of its row and the up-sampled node below. Each incoming skip is weighted by an
attention gate (Oktay et al.): α = σ(ψ(ReLU(W_x x + W_g g))), x̂ = α ⊙ x, with the gating signal g
the up-sampled coarser node. Filters per depth default to the paper's reduced 8, 16, 32, 64, 128.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from segmentation_models_pytorch.encoders import get_encoder
from torch import nn


def conv_block(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
        nn.Conv2d(cout, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
    )


class AttentionGate(nn.Module):
    """Additive attention gate (Oktay et al. 2018), x and g at the same resolution."""

    def __init__(self, x_channels: int, g_channels: int, inter_channels: int):
        super().__init__()
        self.wx = nn.Conv2d(x_channels, inter_channels, 1, bias=False)
        self.wg = nn.Conv2d(g_channels, inter_channels, 1, bias=True)
        self.psi = nn.Sequential(nn.Conv2d(inter_channels, 1, 1), nn.Sigmoid())

    def forward(self, x: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        return x * self.psi(F.relu(self.wx(x) + self.wg(g)))


class AttentionUNetPlusPlus(nn.Module):
    def __init__(self, encoder: str = "resnet34", in_channels: int = 1, classes: int = 1,
                 filters: tuple[int, ...] = (8, 16, 32, 64, 128)):
        super().__init__()
        self.encoder = get_encoder(encoder, in_channels=in_channels, depth=5, weights=None)
        enc = self.encoder.out_channels[1:]          # strides 2, 4, 8, 16, 32
        depth = len(filters)
        # 1×1 projections of the encoder features to the per-depth filters: X(i, 0).
        self.project = nn.ModuleList(nn.Conv2d(enc[i], filters[i], 1) for i in range(depth))
        self.gates = nn.ModuleDict()
        self.nodes = nn.ModuleDict()
        for j in range(1, depth):
            for i in range(depth - j):
                key = f"{i}_{j}"
                skip_channels = filters[i] * j
                self.gates[key] = AttentionGate(skip_channels, filters[i + 1], max(4, filters[i] // 2))
                self.nodes[key] = conv_block(skip_channels + filters[i + 1], filters[i])
        self.head = nn.Conv2d(filters[0], classes, 1)
        self.depth = depth

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = self.encoder(x)[1:]
        nodes = {(i, 0): self.project[i](features[i]) for i in range(self.depth)}
        for j in range(1, self.depth):
            for i in range(self.depth - j):
                skips = torch.cat([nodes[(i, k)] for k in range(j)], dim=1)
                below = F.interpolate(nodes[(i + 1, j - 1)], size=skips.shape[-2:], mode="bilinear",
                                      align_corners=False)
                gated = self.gates[f"{i}_{j}"](skips, below)
                nodes[(i, j)] = self.nodes[f"{i}_{j}"](torch.cat([gated, below], dim=1))
        out = self.head(nodes[(0, self.depth - 1)])   # stride 2
        return F.interpolate(out, size=x.shape[-2:], mode="bilinear", align_corners=False)
