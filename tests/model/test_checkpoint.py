import argparse
import hashlib
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from model.checkpoint import (
    FORMAT,
    Checkpoint,
    CheckpointError,
    _content_digest,
    _ShapesOnly,
    file_sha256,
    load_checkpoint,
    save_checkpoint,
)
from model.network import ActionMoEDynamicModel

REPO = Path(__file__).resolve().parents[2]
CLASSES = ["clap", "jump", "wave"]
CLIP = (2, 3, 4, 32, 32)


def make_model(seed: int = 0) -> ActionMoEDynamicModel:
    torch.manual_seed(seed)
    return ActionMoEDynamicModel(
        num_classes=3, backbone="r2plus1d_mini", hidden_dim=64, motion_dim=32
    ).eval()


def save(path: Path, model: nn.Module, **metadata) -> str:
    return save_checkpoint(path, model, class_names=CLASSES, **metadata)


METADATA = {
    "split": 3,
    "train_args": {"lr": 0.01, "data": Path("/data/hmdb51"), "sizes": (112, 112)},
    "metrics": {"top1": np.float64(0.625), "epochs": np.int64(4), "per_class": [0.5, 0.75]},
}


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """One checkpoint on disk, shared read-only by the tests below (saving takes ~1 s)."""
    path = tmp_path_factory.mktemp("ckpt") / "model.pt"
    model = make_model()
    return path, save(path, model, **METADATA), model


def corrupted_copy(
    src: Path, dst: Path, offset: int | None = None, keep: int | None = None
) -> Path:
    data = bytearray(src.read_bytes())
    if offset is not None:
        data[offset] ^= 0xFF
    dst.write_bytes(bytes(data[:keep]) if keep is not None else bytes(data))
    return dst


def test_round_trip_gives_identical_outputs(saved):
    path, _, model = saved
    x = torch.randn(*CLIP)
    restored = load_checkpoint(path).build_model()
    assert not restored.training
    with torch.no_grad():
        expected, expected_aux = model(x)
        got, got_aux = restored(x)
    assert torch.equal(got, expected)
    assert torch.equal(got_aux.gates, expected_aux.gates)


def test_round_trip_keeps_metadata_as_plain_values(saved):
    path, _, model = saved
    ckpt = load_checkpoint(path)
    assert isinstance(ckpt, Checkpoint)
    assert ckpt.class_names == CLASSES
    assert ckpt.config == model.config
    assert ckpt.split == 3
    assert ckpt.train_args == {"lr": 0.01, "data": "/data/hmdb51", "sizes": [112, 112]}
    assert ckpt.metrics == {"top1": 0.625, "epochs": 4, "per_class": [0.5, 0.75]}
    assert type(ckpt.metrics["top1"]) is float and type(ckpt.metrics["epochs"]) is int
    assert ckpt.versions["torch"] == torch.__version__
    assert {"torchvision", "actiontag"} <= set(ckpt.versions)


def test_save_returns_the_files_sha256_and_load_reports_it(saved):
    path, sha256, _ = saved
    assert sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert load_checkpoint(path).sha256 == sha256


def test_same_weights_and_metadata_give_the_same_sha256(saved, tmp_path):
    _, sha256, _ = saved
    assert save(tmp_path / "elsewhere" / "other-name.pt", make_model(), **METADATA) == sha256


def test_a_model_trained_channels_last_is_saved_as_the_same_plain_file(saved, tmp_path):
    # The trainer keeps the weights channels-last on the CPU (trainer/train.py).
    _, sha256, _ = saved
    model = make_model().to(memory_format=torch.channels_last_3d)
    assert not all(p.is_contiguous() for p in model.parameters())  # the layout did change
    path = tmp_path / "channels-last.pt"
    assert save(path, model, **METADATA) == sha256
    stored = torch.load(path, weights_only=True)["state_dict"]
    assert all(t.stride() == torch.empty(t.shape).stride() for t in stored.values())


def test_saving_over_an_existing_checkpoint_replaces_it_and_leaves_no_temp_file(tmp_path):
    path = tmp_path / "model.pt"
    save(path, make_model(seed=0))
    sha256 = save(path, make_model(seed=1))
    assert [p.name for p in tmp_path.iterdir()] == ["model.pt"]
    assert file_sha256(path) == sha256


def test_byte_flipped_in_the_weights_is_refused_as_tampered(saved, tmp_path):
    path, _, _ = saved
    tampered = corrupted_copy(path, tmp_path / "tampered.pt", offset=path.stat().st_size // 2)
    with pytest.raises(CheckpointError, match="modified or corrupted"):
        load_checkpoint(tampered)


def test_truncated_file_is_refused_as_unreadable(saved, tmp_path):
    path, _, _ = saved
    truncated = corrupted_copy(path, tmp_path / "truncated.pt", keep=path.stat().st_size // 3)
    with pytest.raises(CheckpointError, match="not a readable checkpoint"):
        load_checkpoint(truncated)


def test_file_of_another_kind_is_refused(tmp_path):
    path = tmp_path / "notes.pt"
    path.write_text("not a checkpoint at all\n")
    with pytest.raises(CheckpointError, match="not a readable checkpoint"):
        load_checkpoint(path)


def test_checkpoint_carrying_a_pickled_object_is_refused(tmp_path):
    path = tmp_path / "namespace.pt"
    payload = {
        "format": FORMAT,
        "format_version": 1,
        "state_dict": make_model().state_dict(),
        "train_args": argparse.Namespace(lr=0.1),  # what vars(args) would have avoided
    }
    torch.save(payload, path)
    with pytest.raises(CheckpointError, match=r"pickled Python objects.*argparse\.Namespace"):
        load_checkpoint(path)


def test_whole_pickled_module_is_refused(tmp_path):
    path = tmp_path / "module.pt"
    torch.save(nn.Sequential(nn.Linear(4, 2)), path)
    with pytest.raises(CheckpointError, match="pickled Python objects"):
        load_checkpoint(path)


def test_plain_torch_state_dict_is_refused_as_not_a_checkpoint(tmp_path):
    path = tmp_path / "state.pt"
    torch.save(make_model().state_dict(), path)
    with pytest.raises(CheckpointError, match="not an actiontag checkpoint"):
        load_checkpoint(path)


def test_newer_format_version_is_refused_with_upgrade_advice(tmp_path):
    path = tmp_path / "future.pt"
    torch.save({"format": FORMAT, "format_version": 99}, path)
    with pytest.raises(CheckpointError, match="Upgrade actiontag"):
        load_checkpoint(path)


def test_missing_file_is_refused(tmp_path):
    with pytest.raises(CheckpointError, match="no such checkpoint"):
        load_checkpoint(tmp_path / "absent.pt")


def test_weights_that_do_not_fit_the_network_are_refused_on_build(saved):
    ckpt = load_checkpoint(saved[0])
    del ckpt.state_dict["classifier.weight"]
    with pytest.raises(CheckpointError, match="do not fit"):
        ckpt.build_model()


@pytest.mark.parametrize("damage", ["missing", "reshaped", "unexpected"])
def test_the_check_without_building_refuses_what_building_refuses(saved, damage):
    ckpt = load_checkpoint(saved[0])
    if damage == "missing":
        del ckpt.state_dict["classifier.weight"]
    elif damage == "reshaped":
        ckpt.state_dict["classifier.weight"] = ckpt.state_dict["classifier.weight"][:1]
    else:
        ckpt.state_dict["classifier.extra"] = torch.zeros(1)
    with pytest.raises(CheckpointError) as on_build:
        ckpt.build_model()
    with pytest.raises(CheckpointError) as on_check:
        ckpt.check_fits()
    assert str(on_check.value) == str(on_build.value)


def test_the_check_without_building_passes_a_fitting_checkpoint_and_leaves_it_alone(saved):
    ckpt = load_checkpoint(saved[0])
    before = {name: tensor.clone() for name, tensor in ckpt.state_dict.items()}
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a worker's log gets no line per tensor
        ckpt.check_fits()
    assert all(torch.equal(ckpt.state_dict[name], tensor) for name, tensor in before.items())
    assert all(tensor.device.type == "cpu" for tensor in ckpt.state_dict.values())


def test_the_check_without_building_does_not_import_the_compiler(saved):
    # A fresh interpreter: this one has imported torch._dynamo already.
    code = (
        "import sys\n"
        "from model.checkpoint import load_checkpoint\n"
        "load_checkpoint(sys.argv[1]).check_fits()\n"
        "print('torch._dynamo' in sys.modules)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(saved[0])],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["False"]


def test_initialisers_still_fill_real_tensors_while_meta_ones_are_skipped():
    real = torch.zeros(4, 4)
    with torch.device("meta"), _ShapesOnly():
        meta = torch.empty(4, 4)
        nn.init.normal_(meta)
        nn.init.kaiming_normal_(meta)
        nn.init.normal_(real, mean=5.0)
        real_uniform = torch.zeros(8, device="cpu").uniform_(1.0, 2.0)

    assert meta.is_meta
    assert real.mean().item() > 3.0
    assert ((real_uniform >= 1.0) & (real_uniform < 2.0)).all()


def test_non_plain_metadata_is_refused_before_anything_is_written(tmp_path):
    path = tmp_path / "model.pt"
    with pytest.raises(TypeError, match=r"train_args\['args'\] is a argparse.Namespace"):
        save(path, make_model(), train_args={"args": argparse.Namespace(lr=0.1)})
    assert list(tmp_path.iterdir()) == []


def test_class_names_must_match_the_number_of_classes(tmp_path):
    with pytest.raises(ValueError, match="2 class names for a model with 3 classes"):
        save_checkpoint(tmp_path / "m.pt", make_model(), class_names=["a", "b"])


def test_wrapped_model_is_saved_as_the_model_inside(tmp_path):
    model = make_model()
    path = tmp_path / "wrapped.pt"
    save(path, torch.compile(model))  # not run, so nothing is compiled
    ckpt = load_checkpoint(path)
    assert set(ckpt.state_dict) == set(model.state_dict())
    assert ckpt.config == model.config


def test_saving_something_other_than_the_model_is_refused(tmp_path):
    with pytest.raises(TypeError, match="needs an ActionMoEDynamicModel"):
        save(tmp_path / "m.pt", nn.Linear(2, 3))


def test_unknown_config_keys_from_a_newer_version_load_with_a_warning(saved, tmp_path):
    path, _, _ = saved
    payload = torch.load(path, weights_only=True)
    payload["config"] = {**payload["config"], "new_knob": 1}
    # Re-sealed with the writer's own checksum so only the unknown key differs.
    meta = {k: v for k, v in payload.items() if k not in ("state_dict", "content_sha256")}
    payload["content_sha256"] = _content_digest(meta, payload["state_dict"])
    torch.save(payload, tmp_path / "newer.pt")
    with pytest.warns(UserWarning, match="new_knob"):
        ckpt = load_checkpoint(tmp_path / "newer.pt")
    assert ckpt.config == saved[2].config


def test_file_sha256_matches_hashlib_on_a_multi_chunk_file(tmp_path):
    path = tmp_path / "blob.bin"
    data = np.random.default_rng(0).bytes(3 * (1 << 20) + 17)
    path.write_bytes(data)
    assert file_sha256(path) == hashlib.sha256(data).hexdigest()
