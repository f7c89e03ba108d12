"""Motion dynamics module: a vector describing how a backbone feature map changes in time.

Appearance alone (the backbone's pooled vector) is what a single frame already shows;
this module sees only the differences between adjacent time steps of an intermediate
feature map, so a map that is the same at every time step gives exactly zero and motion
gives a signal that grows with it. Every layer is bias-free and every non-linearity maps
0 to 0 on purpose: that is what keeps "no motion" a defined, exact zero vector instead
of a learned offset.

Through the whole network it holds only with ``ModelConfig.temporal_padding="replicate"``
(model/backbone.py): the backbone's temporal convolutions then repeat a clip's edge steps,
a static clip (every frame the same) reaches this module as a constant map, and
ActionMoEDynamicModel's motion vector is exactly zero on both backbones
(tests/model/test_motion.py). With the default "zeros" (torchvision's padding, what the
Kinetics-400 weights were trained with) it does not: the padding makes the edge steps
differ, and at layer2 of r2plus1d_18 on 16 frames no step is out of its reach, so a
static clip's motion vector is not zero, even at random initialisation.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

__all__ = ["MotionDynamicsModule", "temporal_difference"]


def temporal_difference(x: Tensor) -> Tensor:
    """B x C x T x H x W -> same shape: step t holds x[t] - x[t-1], step 0 holds zeros.

    Keeping T steps (the first one has no predecessor, hence no motion) means T=1 needs
    no special case and the graph has no shape-dependent branch.
    """
    return torch.cat([torch.zeros_like(x[:, :, :1]), x[:, :, 1:] - x[:, :, :-1]], dim=2)


class MotionDynamicsModule(nn.Module):
    """Temporal differences of a feature map -> (2+1)D conv stack -> pooled B x out_dim.

    The channel reduction is linear, so it runs before the difference (diff(Wx) = W
    diff(x)) on fewer channels. The spatial conv is strided to keep the cost at about
    1% of the backbone when fed from layer2.
    """

    def __init__(
        self,
        in_channels: int,
        out_dim: int = 256,
        *,
        mid_channels: int = 64,
        spatial_stride: int = 2,
    ) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.out_dim = out_dim
        self.reduce = nn.Conv3d(in_channels, mid_channels, kernel_size=1, bias=False)
        self.spatial = nn.Conv3d(
            mid_channels,
            mid_channels,
            kernel_size=(1, 3, 3),
            stride=(1, spatial_stride, spatial_stride),
            padding=(0, 1, 1),
            bias=False,
        )
        self.temporal = nn.Conv3d(
            mid_channels, out_dim, kernel_size=(3, 1, 1), padding=(1, 0, 0), bias=False
        )
        self.relu = nn.ReLU(inplace=True)
        self.pool = nn.AdaptiveAvgPool3d(1)
        for conv in (self.reduce, self.spatial, self.temporal):
            nn.init.kaiming_normal_(conv.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, feat: Tensor) -> Tensor:
        """feat: B x C x T x H x W (any T >= 1) -> B x out_dim, zero when nothing moves."""
        x = temporal_difference(self.reduce(feat))
        x = self.relu(self.spatial(x))
        x = self.relu(self.temporal(x))
        return self.pool(x).flatten(1)
