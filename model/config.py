"""What a model is, as data: ``ModelConfig`` and the backbones it can name.

Everything here is plain Python, without torch or torchvision, so that what only needs a
model's settings (the video transform in a DataLoader worker process, the trainer's
options, a checkpoint's description) does not pay for importing the network: importing
torchvision is seconds of CPU per process, most of it torch._dynamo, which its ops
package imports. The network that a config builds is in model/network.py, the
backbones' modules in model/backbone.py.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "BACKBONES",
    "KINETICS_MEAN",
    "KINETICS_STD",
    "PRETRAINED_CHOICES",
    "TEMPORAL_PADDINGS",
    "BackboneSpec",
    "ModelConfig",
    "Weights",
    "backbone_spec",
]

# How the backbone's temporal convolutions may pad a clip's ends (model/backbone.py).
TEMPORAL_PADDINGS = ("zeros", "replicate")

# torchvision's Kinetics-400 video presets (transforms._presets.VideoClassification).
KINETICS_MEAN: tuple[float, float, float] = (0.43216, 0.394666, 0.37645)
KINETICS_STD: tuple[float, float, float] = (0.22803, 0.22145, 0.216989)


@dataclass(frozen=True)
class Weights:
    """Pretrained weights and the clips they were trained on, as torchvision's ``Weights``
    enums carry them (``url`` and ``transforms``): a model that starts from them sees its
    clips the way they were made."""

    title: str  # for messages: "Kinetics-400"
    url: str  # torch.hub caches the file under its base name
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    short_side: int  # frames are resized to this shorter side, then cropped
    crop_size: int
    clip_len: int  # frames per clip


@dataclass(frozen=True)
class BackboneSpec:
    """One video backbone, as the network reads it: its builder in
    model.backbone.BUILDERS (same name) makes the module, randomly initialised and
    without a classifier; the network calls the ``stages`` in order (the first is the
    stem), taps one of the later ones for the motion module and pools the last with the
    ``pool`` module. Plain data, so that what needs only a config never imports torch.
    """

    stages: tuple[str, ...]
    channels: tuple[int, ...]  # output channels of each stage
    pool: str = "avgpool"
    weights: Mapping[str, Weights] = field(default_factory=dict)
    # Padding modes its temporal convolutions allow: replicating a clip's ends needs
    # temporal convolutions that pad in time only (R(2+1)D's t x 1 x 1).
    temporal_paddings: tuple[str, ...] = TEMPORAL_PADDINGS

    def __post_init__(self) -> None:
        if len(self.stages) != len(self.channels) or len(self.stages) < 2:
            raise ValueError("a backbone needs a stem and a stage, each with its channels")

    @property
    def pretrained(self) -> tuple[str, ...]:
        """The names of the weights it can start from."""
        return tuple(self.weights)

    @property
    def motion_stages(self) -> tuple[str, ...]:
        """The stages whose feature map the motion module may take (all but the stem)."""
        return self.stages[1:]

    @property
    def out_channels(self) -> int:
        return self.channels[-1]

    def stage_channels(self, stage: str) -> int:
        return self.channels[self.stages.index(stage)]


# torchvision trained its video ResNets on Kinetics-400 clips of 16 frames, resized to
# 128 x 171 and cropped to 112 x 112 (the shorter side is what the video contract keeps).
def _kinetics400(url: str) -> dict[str, Weights]:
    return {"kinetics400": Weights("Kinetics-400", url, KINETICS_MEAN, KINETICS_STD, 128, 112, 16)}


_VIDEO_RESNET_STAGES = ("stem", "layer1", "layer2", "layer3", "layer4")

BACKBONES: dict[str, BackboneSpec] = {
    # torchvision's R(2+1)D-18: the model the service is meant to serve.
    "r2plus1d_18": BackboneSpec(
        _VIDEO_RESNET_STAGES,
        (64, 64, 128, 256, 512),
        weights=_kinetics400("https://download.pytorch.org/models/r2plus1d_18-91a641e6.pth"),
    ),
    # The same blocks, narrow and shallow: for the tests and the offline demo.
    "r2plus1d_mini": BackboneSpec(_VIDEO_RESNET_STAGES, (16, 16, 32, 64, 128)),
    # torchvision's R3D-18: full 3 x 3 x 3 convolutions, the same stages and widths.
    "r3d_18": BackboneSpec(
        _VIDEO_RESNET_STAGES,
        (64, 64, 128, 256, 512),
        weights=_kinetics400("https://download.pytorch.org/models/r3d_18-b3b3357e.pth"),
        temporal_paddings=("zeros",),
    ),
}
# Every weights name some backbone has.
PRETRAINED_CHOICES = tuple(dict.fromkeys(w for b in BACKBONES.values() for w in b.weights))


def backbone_spec(name: str) -> BackboneSpec:
    """The registry entry of backbone ``name``; ValueError naming the known ones."""
    try:
        return BACKBONES[name]
    except KeyError:
        raise ValueError(
            f"unknown backbone {name!r}; the known ones are {', '.join(BACKBONES)}"
        ) from None


@dataclass(frozen=True)
class ModelConfig:
    """Everything needed to rebuild the network and feed it the clips it was trained on.

    Frozen: a model's config must keep describing that model. Make variants with
    ``dataclasses.replace(config, ...)`` or ``ModelConfig(**changes)``.
    """

    num_classes: int = 51
    num_experts: int = 8
    top_k: int = 2
    motion_dim: int = 256
    hidden_dim: int = 512
    dropout: float = 0.5
    balance_weight: float = 1e-2  # the trainer's loss: CE + balance_weight * balance_loss
    # The video contract (decoding/video.py): frames per clip, frame step, resize, crop, norm.
    clip_len: int = 16
    frame_stride: int = 1
    short_side: int = 128
    crop_size: int = 112
    mean: tuple[float, float, float] = KINETICS_MEAN
    std: tuple[float, float, float] = KINETICS_STD
    # Architecture details beyond the headline sizes. backbone: a name in BACKBONES;
    # "r2plus1d_mini" is for tests and the offline demo only. motion_stage: one of the
    # backbone's stages after its stem.
    backbone: str = "r2plus1d_18"
    motion_stage: str = "layer2"
    # How the backbone's temporal convolutions pad a clip's ends: "zeros" is torchvision's
    # (what the Kinetics-400 weights were trained with); "replicate" keeps a static clip
    # static through the backbone, so its motion vector is exactly zero (model/backbone.py).
    temporal_padding: str = "zeros"
    motion_channels: int = 64
    gate_hidden: int | None = None  # None: hidden_dim
    expert_hidden: int | None = None  # None: hidden_dim
    expert_dropout: float = 0.1
    noise_epsilon: float = 1e-2

    def __post_init__(self) -> None:
        # Lists come back from JSON and checkpoints; keep the frozen value hashable.
        object.__setattr__(self, "mean", tuple(float(v) for v in self.mean))
        object.__setattr__(self, "std", tuple(float(v) for v in self.std))
        self._validate()

    def _validate(self) -> None:
        for name in _POSITIVE_INTS:
            _check_positive_int(name, getattr(self, name))
        for name in ("gate_hidden", "expert_hidden"):
            if getattr(self, name) is not None:
                _check_positive_int(name, getattr(self, name))
        if self.top_k > self.num_experts:
            raise ValueError(
                f"ModelConfig.top_k={self.top_k} exceeds num_experts={self.num_experts}"
            )
        for name in ("dropout", "expert_dropout"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ValueError(
                    f"ModelConfig.{name} must be in [0, 1), got {getattr(self, name)!r}"
                )
        if self.balance_weight < 0 or self.noise_epsilon < 0:
            raise ValueError("ModelConfig.balance_weight and noise_epsilon must be >= 0")
        if self.backbone not in BACKBONES:
            raise ValueError(
                f"ModelConfig.backbone must be one of {tuple(BACKBONES)}, got {self.backbone!r}"
            )
        spec = BACKBONES[self.backbone]
        if self.temporal_padding not in spec.temporal_paddings:
            raise ValueError(
                f"ModelConfig.temporal_padding must be one of {spec.temporal_paddings} "
                f"for backbone {self.backbone}, got {self.temporal_padding!r}"
            )
        if self.motion_stage not in spec.motion_stages:
            raise ValueError(
                f"ModelConfig.motion_stage must be one of {spec.motion_stages} for backbone "
                f"{self.backbone}, got {self.motion_stage!r}"
            )
        if self.crop_size > self.short_side:
            raise ValueError(
                f"ModelConfig.crop_size={self.crop_size} exceeds short_side={self.short_side}"
            )
        if len(self.mean) != 3 or len(self.std) != 3 or min(self.std) <= 0:
            raise ValueError("ModelConfig.mean and std need 3 values each (RGB), std > 0")

    def to_dict(self) -> dict[str, Any]:
        """Plain types only (tuples become lists), for JSON and weights_only checkpoints."""
        return {f.name: _plain(getattr(self, f.name)) for f in dataclasses.fields(self)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ModelConfig:
        """Inverse of to_dict. Unknown keys (from a newer or older actiontag) are ignored
        with a warning; missing keys take their defaults, except where a config saved
        before a field existed meant something else (``_BEFORE_FIELD``)."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            warnings.warn(f"ModelConfig.from_dict ignores unknown keys: {unknown}", stacklevel=2)
        return cls(**{**_BEFORE_FIELD, **{k: v for k, v in d.items() if k in known}})


# What a config saved before each of these fields existed was built with: every such
# checkpoint was trained, and is served, with torchvision's zero temporal padding.
_BEFORE_FIELD: dict[str, Any] = {"temporal_padding": "zeros"}


_POSITIVE_INTS = (
    "num_classes",
    "num_experts",
    "top_k",
    "motion_dim",
    "hidden_dim",
    "clip_len",
    "frame_stride",
    "short_side",
    "crop_size",
    "motion_channels",
)


def _check_positive_int(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"ModelConfig.{name} must be a positive integer, got {value!r}")


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value
