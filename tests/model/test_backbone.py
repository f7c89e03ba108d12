"""The backbone registry: r2plus1d_18 (served, Kinetics-400 weights), r2plus1d_mini and
r3d_18, each built from its entry and read through the stages its entry names."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from torchvision.models.video import R2Plus1D_18_Weights, R3D_18_Weights, r3d_18
from torchvision.models.video.resnet import BasicBlock, Conv2Plus1D, Conv3DSimple

from model.backbone import BUILDERS, build_backbone
from model.config import BACKBONES
from model.network import ActionMoEDynamicModel, ModelConfig, build_model

MINI = ModelConfig(num_classes=3, backbone="r2plus1d_mini", clip_len=4, short_side=40, crop_size=32)


def test_the_default_backbone_is_torchvisions_r2plus1d_18() -> None:
    assert ModelConfig().backbone == "r2plus1d_18"


def test_a_checkpoint_config_without_a_backbone_builds_r2plus1d_18() -> None:
    saved = MINI.to_dict()
    del saved["backbone"]  # configs written before the option existed
    assert ModelConfig.from_dict(saved).backbone == "r2plus1d_18"


def test_the_mini_backbone_is_made_of_r2plus1d_blocks() -> None:
    model = ActionMoEDynamicModel(config=MINI)
    blocks = [m for m in model.backbone.modules() if isinstance(m, BasicBlock)]
    assert len(blocks) == 4  # one per stage
    assert all(isinstance(block.conv1[0], Conv2Plus1D) for block in blocks)


def test_the_mini_backbone_has_under_a_thirtieth_of_the_parameters() -> None:
    def count(model: torch.nn.Module) -> int:
        return sum(p.numel() for p in model.parameters())

    mini = count(ActionMoEDynamicModel(config=MINI).backbone)
    full = count(ActionMoEDynamicModel(config=ModelConfig(num_classes=3)).backbone)
    assert mini * 30 < full


def test_the_mini_model_classifies_a_clip() -> None:
    model = build_model(MINI.to_dict()).eval()
    with torch.no_grad():
        logits, aux = model(torch.randn(2, 3, 4, 32, 32))
    assert logits.shape == (2, 3)
    assert aux.gates.shape[0] == 2


def test_an_unknown_backbone_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match="backbone must be one of"):
        ModelConfig(backbone="resnet9000")


def test_kinetics_weights_are_refused_for_the_mini_backbone() -> None:
    with pytest.raises(ValueError, match="no 'kinetics400' weights"):
        ActionMoEDynamicModel(config=MINI, pretrained="kinetics400")


# -- the registry -----------------------------------------------------------------------


def test_every_registered_backbone_has_a_builder() -> None:
    assert set(BUILDERS) == set(BACKBONES)


def test_an_unknown_backbone_name_lists_the_known_ones() -> None:
    with pytest.raises(ValueError, match="unknown backbone 'resnet9000'") as info:
        build_backbone("resnet9000")
    assert all(name in str(info.value) for name in BACKBONES)


@pytest.mark.parametrize("name", sorted(BACKBONES))
def test_every_stage_gives_the_channels_its_entry_says(name: str) -> None:
    spec = BACKBONES[name]
    backbone = build_backbone(name).eval()
    x = torch.randn(1, 3, 4, 32, 32)
    with torch.no_grad():
        for stage, channels in zip(spec.stages, spec.channels, strict=True):
            x = getattr(backbone, stage)(x)
            assert x.shape[1] == channels, stage
        assert getattr(backbone, spec.pool)(x).flatten(1).shape == (1, spec.out_channels)


def test_the_r3d_18_model_classifies_a_tiny_clip() -> None:
    config = dataclasses.replace(MINI, backbone="r3d_18")
    model = build_model(config).eval()
    blocks = [m for m in model.backbone.modules() if isinstance(m, BasicBlock)]
    assert all(isinstance(block.conv1[0], Conv3DSimple) for block in blocks)
    with torch.no_grad():
        logits, _ = model(torch.randn(1, 3, 4, 32, 32))
    assert logits.shape == (1, 3) and torch.isfinite(logits).all()


def test_r3d_18s_parameter_names_are_torchvisions_without_fc() -> None:
    ours = build_backbone("r3d_18").state_dict()
    theirs = {k for k in r3d_18().state_dict() if not k.startswith("fc.")}
    assert set(ours) == theirs


def test_r3d_18_cannot_replicate_a_clips_ends() -> None:
    # Its 3 x 3 x 3 convolutions pad in space too: replicating would change space as well.
    with pytest.raises(ValueError, match="temporal_padding"):
        ModelConfig(backbone="r3d_18", temporal_padding="replicate")


@pytest.mark.parametrize(
    ("name", "enum"), [("r2plus1d_18", R2Plus1D_18_Weights), ("r3d_18", R3D_18_Weights)]
)
def test_the_registrys_weights_are_torchvisions_with_their_transforms(name, enum) -> None:
    ours = BACKBONES[name].weights["kinetics400"]
    theirs = enum.KINETICS400_V1
    transforms = theirs.transforms()
    assert ours.url == theirs.url
    assert list(ours.mean) == list(transforms.mean) and list(ours.std) == list(transforms.std)
    assert [ours.crop_size] * 2 == list(transforms.crop_size)
    assert ours.short_side == min(transforms.resize_size)


def test_the_default_configs_clips_are_the_kinetics_weights_clips() -> None:
    config, weights = ModelConfig(), BACKBONES["r2plus1d_18"].weights["kinetics400"]
    assert (config.mean, config.std) == (weights.mean, weights.std)
    assert (config.short_side, config.crop_size, config.clip_len) == (
        weights.short_side,
        weights.crop_size,
        weights.clip_len,
    )


def test_the_motion_stage_must_be_one_of_the_backbones_stages() -> None:
    with pytest.raises(ValueError, match="motion_stage must be one of"):
        ModelConfig(backbone="r2plus1d_mini", motion_stage="stem")
