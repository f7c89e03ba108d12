"""The video backbones ActionMoEDynamicModel can stand on: the builder of each backbone
that model.config.BACKBONES describes, and what the network does to any of them.

``r2plus1d_18`` and ``r3d_18`` are torchvision's networks, parameter names and all, so
their Kinetics-400 weights load unchanged; r2plus1d_18 is the model the service is meant
to serve. ``r2plus1d_mini`` is the same R(2+1)D design (torchvision's ``BasicBlock`` and
``Conv2Plus1D``, the factorised stem) at a quarter of the width and one block per stage:
about 1/40 of the parameters, for the tests and the offline demo, where a randomly
initialised network learns a few motions in seconds. All of them expose ``stem``,
``layer1``..``layer4`` and ``avgpool`` the way torchvision's ``VideoResNet`` does; a
backbone of another shape says which of its modules are its stages and its pool in its
registry entry.

Temporal padding: torchvision pads every temporal convolution with zeros, so the first
and last time steps of a clip in which nothing moves still differ from the others, and
from layer to layer the difference spreads inwards (at layer2 of r2plus1d_18, a 16-frame
clip has no time step left that the padding does not reach). ``set_temporal_padding(...,
"replicate")`` makes those convolutions repeat the clip's first and last step instead:
a clip whose frames are all the same then gives feature maps that are the same at every
time step, at every stage. Padding has no parameters, so weights load either way.
ModelConfig's default is "zeros": the Kinetics-400 weights were trained with it, and the
demo model learned less well with "replicate" (docs/benchmarks.md).
"""

from __future__ import annotations

from collections.abc import Callable

from torch import Tensor, nn

from model.config import BACKBONES, TEMPORAL_PADDINGS, BackboneSpec, backbone_spec
from model.vision import BasicBlock, Conv2Plus1D
from model.vision import r2plus1d_18 as _torchvision_r2plus1d_18
from model.vision import r3d_18 as _torchvision_r3d_18

__all__ = [
    "BACKBONES",
    "BUILDERS",
    "TEMPORAL_PADDINGS",
    "BackboneSpec",
    "build_backbone",
    "r2plus1d_18",
    "r2plus1d_mini",
    "r3d_18",
    "set_temporal_padding",
]


def build_backbone(name: str) -> nn.Module:
    """The named backbone, randomly initialised, without a classifier; ValueError naming
    the known backbones when ``name`` is none of them."""
    backbone_spec(name)
    return BUILDERS[name]()


def r2plus1d_18() -> nn.Module:
    """torchvision's R(2+1)D-18, ``fc`` an Identity."""
    backbone = _torchvision_r2plus1d_18(weights=None)
    backbone.fc = nn.Identity()
    return backbone


def r3d_18() -> nn.Module:
    """torchvision's R3D-18, ``fc`` an Identity."""
    backbone = _torchvision_r3d_18(weights=None)
    backbone.fc = nn.Identity()
    return backbone


def r2plus1d_mini() -> nn.Module:
    """R(2+1)D blocks at a quarter of r2plus1d_18's widths, one block per stage."""
    return _R2Plus1d(widths=(16, 32, 64, 128), blocks=(1, 1, 1, 1), stem_channels=12)


# The builder of each backbone in model.config.BACKBONES, by the same name.
BUILDERS: dict[str, Callable[[], nn.Module]] = {
    "r2plus1d_18": r2plus1d_18,
    "r2plus1d_mini": r2plus1d_mini,
    "r3d_18": r3d_18,
}


def set_temporal_padding(backbone: nn.Module, mode: str) -> None:
    """Make every temporal convolution of ``backbone`` pad a clip's ends with ``mode``:
    "zeros" (torchvision's) or "replicate" (the first and last time steps repeated)."""
    if mode not in TEMPORAL_PADDINGS:
        raise ValueError(f"temporal padding must be one of {TEMPORAL_PADDINGS}, got {mode!r}")
    for module in backbone.modules():
        if isinstance(module, nn.Conv3d) and module.kernel_size[0] > 1:
            if module.padding_mode == mode:
                continue
            # R(2+1)D's temporal convolutions are t x 1 x 1: the mode reaches time only.
            if tuple(module.padding[1:]) != (0, 0):
                raise ValueError(f"{module} pads in space too; only time may be replicated")
            module.padding_mode = mode


class _R2Plus1d(nn.Module):
    """torchvision's VideoResNet with R(2+1)D blocks, at any widths and depths."""

    def __init__(
        self, widths: tuple[int, ...], blocks: tuple[int, ...], stem_channels: int
    ) -> None:
        super().__init__()
        mid, first = stem_channels, widths[0]
        self.stem = nn.Sequential(
            nn.Conv3d(3, mid, (1, 7, 7), stride=(1, 2, 2), padding=(0, 3, 3), bias=False),
            nn.BatchNorm3d(mid),
            nn.ReLU(inplace=True),
            nn.Conv3d(mid, first, (3, 1, 1), padding=(1, 0, 0), bias=False),
            nn.BatchNorm3d(first),
            nn.ReLU(inplace=True),
        )
        inplanes = first
        for index, (planes, count) in enumerate(zip(widths, blocks, strict=True)):
            stride = 1 if index == 0 else 2
            setattr(self, f"layer{index + 1}", _stage(inplanes, planes, count, stride))
            inplanes = planes
        self.avgpool = nn.AdaptiveAvgPool3d((1, 1, 1))
        self.fc = nn.Identity()
        _init_like_torchvision(self)

    def forward(self, x: Tensor) -> Tensor:
        x = self.stem(x)
        for name in ("layer1", "layer2", "layer3", "layer4"):
            x = getattr(self, name)(x)
        return self.fc(self.avgpool(x).flatten(1))


def _stage(inplanes: int, planes: int, blocks: int, stride: int) -> nn.Sequential:
    # As VideoResNet._make_layer: a 1x1x1 projection where the shape changes.
    downsample = None
    if stride != 1 or inplanes != planes:
        downsample = nn.Sequential(
            nn.Conv3d(
                inplanes,
                planes,
                kernel_size=1,
                stride=Conv2Plus1D.get_downsample_stride(stride),
                bias=False,
            ),
            nn.BatchNorm3d(planes),
        )
    layers = [BasicBlock(inplanes, planes, Conv2Plus1D, stride, downsample)]
    layers += [BasicBlock(planes, planes, Conv2Plus1D) for _ in range(1, blocks)]
    return nn.Sequential(*layers)


def _init_like_torchvision(module: nn.Module) -> None:
    for m in module.modules():
        if isinstance(m, nn.Conv3d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, nn.BatchNorm3d):
            nn.init.constant_(m.weight, 1)
            nn.init.constant_(m.bias, 0)
