import dataclasses

import pytest
import torch
from torchvision.models.video import R2Plus1D_18_Weights, r2plus1d_18

from model.network import (
    ActionMoEDynamicModel,
    ModelConfig,
    PretrainedWeightsUnavailable,
    build_model,
)
from tests.support.offline import offline_torch_home as no_network_torch_home

WEIGHTS_FILE = "r2plus1d_18-91a641e6.pth"
WEIGHTS_URL = "https://download.pytorch.org/models/r2plus1d_18-91a641e6.pth"


def small_model(**overrides) -> ActionMoEDynamicModel:
    torch.manual_seed(0)
    return ActionMoEDynamicModel(num_classes=5, **overrides)


def torchvision_backbone_state(model=None) -> dict[str, torch.Tensor]:
    state = (model or r2plus1d_18()).state_dict()
    return {k: v for k, v in state.items() if not k.startswith("fc.")}


@pytest.fixture
def offline_torch_home(tmp_path, monkeypatch):
    """An empty TORCH_HOME, and no network (tests.support.offline)."""
    return no_network_torch_home(tmp_path, monkeypatch)


def test_forward_on_a_standard_clip_gives_logits_and_routing():
    model = ActionMoEDynamicModel().eval()
    with torch.no_grad():
        logits, aux = model(torch.randn(2, 3, 16, 112, 112))
    assert logits.shape == (2, 51)
    assert torch.isfinite(logits).all()
    assert aux.gates.shape == (2, 8) and aux.indices.shape == (2, 2)
    assert aux.balance_loss.ndim == 0


@pytest.mark.parametrize("shape", [(1, 3, 1, 32, 32), (2, 3, 4, 48, 40), (1, 3, 8, 64, 64)])
def test_forward_on_small_clips_of_any_length(shape):
    model = small_model().eval()
    with torch.no_grad():
        logits, aux = model(torch.randn(*shape))
    assert logits.shape == (shape[0], 5)
    assert torch.isfinite(logits).all()
    torch.testing.assert_close(aux.gates.sum(1), torch.ones(shape[0]))


def test_eval_forward_is_deterministic():
    model = small_model().eval()
    x = torch.randn(2, 3, 4, 32, 32)
    with torch.no_grad():
        assert torch.equal(model(x)[0], model(x)[0])


def test_one_training_step_sends_gradients_to_every_part():
    model = small_model(dropout=0.0).train()
    logits, aux = model(torch.randn(2, 3, 4, 32, 32))
    loss = torch.nn.functional.cross_entropy(logits, torch.tensor([0, 3]))
    (loss + model.config.balance_weight * aux.balance_loss).backward()
    for part in (
        "backbone.stem.0",
        "backbone.layer4",
        "motion.reduce",
        "fuse",
        "moe.gate",
        "classifier",
    ):
        grads = [p.grad for n, p in model.named_parameters() if n.startswith(part)]
        assert grads and all(g is not None for g in grads), part
        assert sum(g.abs().sum() for g in grads) > 0, part


def test_backbone_parameter_names_are_torchvision_r2plus1d_18_without_fc():
    model = small_model()
    assert set(model.backbone.state_dict()) == set(torchvision_backbone_state())


def test_torchvision_r2plus1d_18_state_dict_loads_into_backbone_strictly():
    model = small_model()
    torch.manual_seed(7)
    reference = torchvision_backbone_state()
    model.backbone.load_state_dict(reference, strict=True)
    loaded = model.backbone.state_dict()
    assert all(torch.equal(loaded[k], v) for k, v in reference.items())


def test_motion_module_can_sit_on_layer3():
    model = small_model(motion_stage="layer3").eval()
    assert model.motion.in_channels == 256
    with torch.no_grad():
        logits, _ = model(torch.randn(1, 3, 4, 32, 32))
    assert logits.shape == (1, 5)


def test_eval_forward_exports_with_torch_export():
    model = small_model().eval()
    x = torch.randn(1, 3, 4, 32, 32)
    exported = torch.export.export(model, (x,))
    logits, aux = exported.module()(x)
    with torch.no_grad():
        ref_logits, ref_aux = model(x)
    torch.testing.assert_close(logits, ref_logits)
    assert torch.equal(aux.indices, ref_aux.indices)


def test_explicit_arguments_override_the_config():
    config = ModelConfig(num_classes=7, num_experts=4, top_k=1)
    model = ActionMoEDynamicModel(num_classes=3, config=config, hidden_dim=64)
    assert model.config == dataclasses.replace(config, num_classes=3, hidden_dim=64)
    assert model.classifier.out_features == 3 and model.moe.num_experts == 4


def test_config_alone_decides_the_architecture():
    model = ActionMoEDynamicModel(config=ModelConfig(num_classes=9, motion_dim=32))
    assert model.classifier.out_features == 9
    assert model.motion.out_dim == 32


def test_config_round_trips_through_a_plain_dict():
    config = ModelConfig(num_classes=10, clip_len=8, mean=(0.5, 0.5, 0.5))
    d = config.to_dict()
    assert d["mean"] == [0.5, 0.5, 0.5]
    assert all(isinstance(v, (int, float, str, list, type(None))) for v in d.values())
    assert ModelConfig.from_dict(d) == config


def test_config_from_dict_ignores_unknown_keys_with_a_warning():
    d = {**ModelConfig().to_dict(), "from_the_future": 1}
    with pytest.warns(UserWarning, match="from_the_future"):
        config = ModelConfig.from_dict(d)
    assert config == ModelConfig()


@pytest.mark.parametrize(
    "bad",
    [
        {"top_k": 9},
        {"num_classes": 0},
        {"hidden_dim": 2.5},
        {"dropout": 1.0},
        {"motion_stage": "stem"},
        {"crop_size": 200},
        {"std": (0.2, 0.0, 0.2)},
    ],
)
def test_invalid_config_values_are_refused(bad):
    with pytest.raises(ValueError, match=next(iter(bad))):
        ModelConfig(**bad)


def test_build_model_accepts_a_config_dict():
    model = build_model(ModelConfig(num_classes=4).to_dict())
    assert isinstance(model, ActionMoEDynamicModel)
    assert model.config.num_classes == 4


def test_unknown_pretrained_name_is_refused():
    with pytest.raises(ValueError, match="kinetics400"):
        small_model(pretrained="imagenet")


def test_kinetics400_offline_and_uncached_names_file_url_and_cache_folder(offline_torch_home):
    with pytest.raises(PretrainedWeightsUnavailable) as info:
        small_model(pretrained="kinetics400")
    message = str(info.value)
    assert WEIGHTS_FILE in message
    assert WEIGHTS_URL in message
    assert str(offline_torch_home) in message
    assert list(offline_torch_home.iterdir()) == []  # no partial download left behind


def test_kinetics400_weights_load_from_the_torch_hub_cache(offline_torch_home):
    # torchvision checks the sha256 prefix in the file name only when it downloads; a
    # file already in the cache is loaded as it is. So a state dict saved from a
    # randomly initialised r2plus1d_18 under the real name exercises the real path.
    assert R2Plus1D_18_Weights.KINETICS400_V1.url == WEIGHTS_URL
    torch.manual_seed(123)
    reference = r2plus1d_18()
    offline_torch_home.mkdir(parents=True)
    torch.save(reference.state_dict(), offline_torch_home / WEIGHTS_FILE)

    model = small_model(pretrained="kinetics400")

    loaded = model.backbone.state_dict()
    assert all(torch.equal(loaded[k], v) for k, v in torchvision_backbone_state(reference).items())


def test_unreadable_cached_kinetics400_file_names_it_and_says_what_to_do(offline_torch_home):
    offline_torch_home.mkdir(parents=True)
    torch.save(r2plus1d_18().state_dict(), offline_torch_home / WEIGHTS_FILE)
    cached = offline_torch_home / WEIGHTS_FILE
    cached.write_bytes(cached.read_bytes()[:100_000])  # an interrupted copy

    with pytest.raises(PretrainedWeightsUnavailable, match="Delete it") as info:
        small_model(pretrained="kinetics400")
    assert str(cached) in str(info.value)
