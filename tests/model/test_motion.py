import pytest
import torch
from torchvision.models.video import r2plus1d_18

from model.motion import MotionDynamicsModule, temporal_difference
from model.network import ActionMoEDynamicModel, ModelConfig

C = 32


def make_module(out_dim: int = 48) -> MotionDynamicsModule:
    torch.manual_seed(0)
    return MotionDynamicsModule(C, out_dim, mid_channels=16).eval()


def static_clip(t: int = 6, size: int = 12) -> torch.Tensor:
    frame = torch.rand(2, C, 1, size, size)
    return frame.expand(-1, -1, t, -1, -1).contiguous()


def moving_clip(t: int = 6, size: int = 12) -> torch.Tensor:
    frame = torch.rand(2, C, size, size)
    return torch.stack([frame.roll(shifts=step, dims=-1) for step in range(t)], dim=2)


def test_static_clip_gives_an_exactly_zero_motion_vector():
    out = make_module()(static_clip())
    assert out.shape == (2, 48)
    assert torch.count_nonzero(out) == 0


def test_moving_clip_gives_a_nonzero_motion_vector():
    out = make_module()(moving_clip())
    assert (out.abs().sum(1) > 0).all()


def test_single_time_step_gives_a_zero_vector_of_the_output_size():
    out = make_module(out_dim=20)(torch.rand(3, C, 1, 7, 5))
    assert out.shape == (3, 20)
    assert torch.count_nonzero(out) == 0


@pytest.mark.parametrize(("t", "h", "w"), [(2, 1, 1), (3, 5, 9), (8, 28, 28)])
def test_any_clip_length_and_map_size_gives_a_finite_vector(t, h, w):
    out = make_module()(torch.rand(1, C, t, h, w))
    assert out.shape == (1, 48)
    assert torch.isfinite(out).all()


def test_temporal_difference_keeps_length_with_zero_first_step():
    x = torch.arange(4.0).reshape(1, 1, 4, 1, 1) ** 2  # 0, 1, 4, 9
    d = temporal_difference(x)
    assert d.flatten().tolist() == [0.0, 1.0, 3.0, 5.0]


def test_motion_vector_depends_on_direction():
    module = make_module()
    frame = torch.rand(2, C, 12, 12)
    right = torch.stack([frame.roll(step, dims=-1) for step in range(6)], dim=2)
    left = torch.stack([frame.roll(-step, dims=-1) for step in range(6)], dim=2)
    assert not torch.allclose(module(right), module(left))


# Through ActionMoEDynamicModel: what the motion module is fed comes out of the backbone.
# With "replicate" temporal padding, the option that makes a static clip stay static.
NETWORK = {
    "r2plus1d_18": ModelConfig(num_classes=3, backbone="r2plus1d_18", temporal_padding="replicate"),
    "r2plus1d_mini": ModelConfig(
        num_classes=3, backbone="r2plus1d_mini", temporal_padding="replicate"
    ),
}


def _motion_vector(model: ActionMoEDynamicModel, clip: torch.Tensor) -> torch.Tensor:
    captured: list[torch.Tensor] = []
    hook = model.motion.register_forward_hook(lambda m, i, out: captured.append(out))
    with torch.no_grad():
        model(clip)
    hook.remove()
    return captured[0]


def _static_clips(frames: int = 16, size: int = 32) -> torch.Tensor:
    torch.manual_seed(1)
    return torch.randn(2, 3, 1, size, size).expand(-1, -1, frames, -1, -1).contiguous()


@pytest.mark.parametrize("backbone", sorted(NETWORK))
def test_a_static_clip_gives_an_exactly_zero_motion_vector_with_replicate_padding(backbone):
    torch.manual_seed(0)
    model = ActionMoEDynamicModel(config=NETWORK[backbone]).eval()

    vector = _motion_vector(model, _static_clips())

    assert vector.shape == (2, 256)
    assert torch.count_nonzero(vector) == 0


def test_a_config_saved_before_temporal_padding_existed_keeps_torchvisions_zero_padding():
    saved = NETWORK["r2plus1d_18"].to_dict()
    del saved["temporal_padding"]
    torch.manual_seed(0)
    model = ActionMoEDynamicModel(config=ModelConfig.from_dict(saved)).eval()
    reference = r2plus1d_18()
    reference.fc = torch.nn.Identity()
    reference.load_state_dict(model.backbone.state_dict())
    clips = _static_clips(frames=8)

    with torch.no_grad():
        assert torch.equal(model.backbone(clips), reference.eval()(clips))
    assert torch.count_nonzero(_motion_vector(model, clips)) > 0


def test_a_new_config_pads_with_zeros_as_torchvision_and_its_kinetics_weights_do():
    torch.manual_seed(0)
    model = ActionMoEDynamicModel(config=ModelConfig(num_classes=3)).eval()
    reference = r2plus1d_18()
    reference.fc = torch.nn.Identity()
    reference.load_state_dict(model.backbone.state_dict())
    clips = _static_clips(frames=8)

    with torch.no_grad():
        assert torch.equal(model.backbone(clips), reference.eval()(clips))
