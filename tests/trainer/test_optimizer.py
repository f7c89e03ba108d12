"""make_optimizer: which parameters weight decay pulls towards zero, and at what rate."""

from __future__ import annotations

from torch import nn

from model.network import ActionMoEDynamicModel, ModelConfig
from trainer.train import TrainSettings, make_optimizer

MINI = ModelConfig(num_classes=3, backbone="r2plus1d_mini", hidden_dim=16, motion_dim=8)

# Every convolution and linear weight, the experts' stacked fc weights; nothing else.
MINI_DECAYED = {
    "backbone.stem.0.weight",
    "backbone.stem.3.weight",
    *(
        f"backbone.layer{stage}.0.{conv}.0.{index}.weight"
        for stage in (1, 2, 3, 4)
        for conv in ("conv1", "conv2")
        for index in (0, 3)
    ),
    *(f"backbone.layer{stage}.0.downsample.0.weight" for stage in (2, 3, 4)),
    "motion.reduce.weight",
    "motion.spatial.weight",
    "motion.temporal.weight",
    "fuse.1.weight",
    "moe.gate.trunk.0.weight",
    "moe.gate.clean.weight",
    "moe.gate.noise.weight",
    "moe.experts.fc1_weight",
    "moe.experts.fc2_weight",
    "classifier.weight",
}


def _decay_and_lr(model: nn.Module) -> dict[str, tuple[float, float]]:
    optimizer = make_optimizer(model, TrainSettings(lr=1e-3, weight_decay=0.05))
    names = {id(param): name for name, param in model.named_parameters()}
    return {
        names[id(param)]: (group["weight_decay"], group["lr"])
        for group in optimizer.param_groups
        for param in group["params"]
    }


def test_only_convolution_and_linear_weights_are_decayed() -> None:
    settings = _decay_and_lr(ActionMoEDynamicModel(config=MINI))

    decayed = {name for name, (decay, _) in settings.items() if decay > 0}

    assert decayed == MINI_DECAYED
    assert {decay for decay, _ in settings.values()} == {0.0, 0.05}


def test_the_experts_stacked_norms_and_biases_are_not_decayed() -> None:
    settings = _decay_and_lr(ActionMoEDynamicModel(config=MINI))

    for name in ("norm_weight", "norm_bias", "fc1_bias", "fc2_bias"):
        assert settings[f"moe.experts.{name}"] == (0.0, 1e-3)
