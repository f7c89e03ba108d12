"""The backbone option: r2plus1d_18 (served, Kinetics-400 weights) and r2plus1d_mini."""

from __future__ import annotations

import pytest
import torch
from torchvision.models.video.resnet import BasicBlock, Conv2Plus1D

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


def test_the_mini_backbone_has_under_a_twentieth_of_the_parameters() -> None:
    def count(model: torch.nn.Module) -> int:
        return sum(p.numel() for p in model.parameters())

    mini = count(ActionMoEDynamicModel(config=MINI).backbone)
    full = count(ActionMoEDynamicModel(config=ModelConfig(num_classes=3)).backbone)
    assert mini * 20 < full


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
