"""--init-from and --freeze-backbone: a run starts from a model it is given (its
classifier kept for the same classes, new for others), can train the head alone, and
its checkpoint records what it started from and what it was trained on."""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

import pytest
import torch

from model.checkpoint import Checkpoint, file_sha256, load_checkpoint
from model.network import ActionMoEDynamicModel
from tests.support.class_folders import write_class_folders
from tests.support.model import save_random_checkpoint, tiny_config
from tests.support.offline import offline_torch_home
from trainer.cli import main
from trainer.datasets.split_files import split_sha256
from trainer.init_from import InitFrom
from trainer.train import read_resume_state

MODEL_CLASSES = ["clap", "wave"]
# The options of a run on the folders below; the rest of the network (the small
# backbone, 4-frame 32x32 clips) is the --init-from model's.
RUN = [
    "--dataset", "folders",
    "--epochs", "1",
    "--batch-size", "2",
    "--val-fraction", "0",
    "--workers", "0",
    "--eval-clips", "1",
    "--no-progress",
]  # fmt: skip


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model of the two classes MODEL_CLASSES (random weights: the copy is what counts)."""
    path = tmp_path_factory.mktemp("base") / "model.pt"
    save_random_checkpoint(path, tiny_config(len(MODEL_CLASSES)), MODEL_CLASSES, seed=3)
    return path


@pytest.fixture(scope="module")
def videos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two classes, one of them not the model's: 3 training and 1 test video each."""
    root = tmp_path_factory.mktemp("finetune") / "videos"
    write_class_folders(root, {"jump": 4, "wave": 4})
    return root


@pytest.fixture(scope="module")
def frozen(base: Path, videos: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The run folder of a run from ``base`` on ``videos`` with a frozen backbone."""
    out = tmp_path_factory.mktemp("frozen")
    args = [*RUN, "--data-dir", str(videos), "--out", str(out)]
    assert main([*args, "--init-from", str(base), "--freeze-backbone"]) == 0
    return out / "split1"


def _main(args: list[str], caplog: pytest.LogCaptureFixture) -> tuple[int, str]:
    caplog.clear()
    with caplog.at_level(logging.INFO):
        code = main(args)
    return code, caplog.text


def _part(state: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    return {k: v for k, v in state.items() if k.startswith(prefix)}


def _equal(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def _started(checkpoint: Checkpoint, classes: list[str]) -> tuple[dict, dict]:
    """(the weights a run for ``classes`` starts from, those its network is built with)."""
    init = InitFrom(checkpoint, classes)
    torch.manual_seed(11)
    model = ActionMoEDynamicModel(config=init.config({}))
    built = {k: v.clone() for k, v in model.state_dict().items()}
    init.load_into(model)
    return model.state_dict(), built


def test_the_same_class_list_keeps_every_weight_classifier_included(base: Path) -> None:
    checkpoint = load_checkpoint(base)
    started, _ = _started(checkpoint, MODEL_CLASSES)
    assert _equal(started, checkpoint.state_dict)
    assert InitFrom(checkpoint, MODEL_CLASSES).record()["classifier"] == "kept"


def test_another_class_list_starts_the_classifier_anew_and_copies_the_rest(base: Path) -> None:
    checkpoint = load_checkpoint(base)
    reordered = list(reversed(MODEL_CLASSES))  # the same names: other labels
    started, built = _started(checkpoint, reordered)
    classifier = _part(started, "classifier.")
    assert _equal(classifier, _part(built, "classifier."))
    assert not torch.equal(
        classifier["classifier.weight"], checkpoint.state_dict["classifier.weight"]
    )
    for part in ("backbone.", "motion.", "fuse.", "moe."):
        assert _equal(_part(started, part), _part(checkpoint.state_dict, part)), part
    assert InitFrom(checkpoint, reordered).record()["classifier"] == "new"


def test_a_frozen_backbone_keeps_its_weights_and_statistics_while_the_head_learns(
    frozen: Path, base: Path
) -> None:
    before = load_checkpoint(base).state_dict
    after = load_checkpoint(frozen / "model.pt").state_dict
    # Buffers too: BatchNorm's running statistics do not drift in eval mode.
    assert _equal(_part(after, "backbone."), _part(before, "backbone."))
    for part in ("motion.", "moe."):
        assert not _equal(_part(after, part), _part(before, part)), part


def test_the_checkpoint_records_the_model_it_started_from(frozen: Path, base: Path) -> None:
    train_args = load_checkpoint(frozen / "model.pt").train_args
    assert train_args["init_from"] == {
        "path": str(base),
        "sha256": file_sha256(base),
        "classifier": "new",
    }
    assert train_args["freeze_backbone"] is True
    assert train_args["pretrained"] is None  # nothing fetched
    assert train_args["backbone_lr_scale"] == 0.1


def test_the_checkpoint_records_the_dataset_and_split_it_was_trained_on(
    frozen: Path, videos: Path
) -> None:
    train_args = load_checkpoint(frozen / "model.pt").train_args
    found = json.loads((frozen / "dataset.json").read_text())
    assert train_args["trained_on"] == {
        "dataset": "folders",
        "classes": ["jump", "wave"],
        "videos": {"jump": {"train": 3, "test": 1}, "wave": {"train": 3, "test": 1}},
        "split_sha256": hashlib.sha256((frozen / "split.txt").read_bytes()).hexdigest(),
    }
    assert train_args["trained_on"]["videos"] == found["videos"]
    assert (train_args["test_fraction"], train_args["split_seed"]) == (0.2, 0)
    assert train_args["split_file"] is None


def test_a_resumed_run_keeps_the_record_of_the_model_it_started_from(
    base: Path, videos: Path, tmp_path: Path
) -> None:
    args = [*RUN, "--data-dir", str(videos), "--out", str(tmp_path), "--epochs", "2"]
    assert main([*args, "--init-from", str(base), "--stop-after-epoch", "1"]) == 0
    assert main([*args, "--resume"]) == 0
    # last.pt holds the resumed run's own train_args (model.pt may be epoch 1's).
    state = read_resume_state(tmp_path / "split1" / "last.pt")
    assert state["epoch"] == 2
    assert state["train_args"]["init_from"]["sha256"] == file_sha256(base)


@pytest.mark.parametrize(
    ("option", "shown"),
    [
        (["--backbone", "r3d_18"], "--backbone r3d_18 (the model has r2plus1d_mini)"),
        (["--clip-len", "8"], "--clip-len 8 (the model has 4)"),
    ],
)
def test_an_option_that_contradicts_the_model_is_refused_naming_it(
    base: Path,
    videos: Path,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    option: list[str],
    shown: str,
) -> None:
    args = [*RUN, "--data-dir", str(videos), "--out", str(tmp_path), "--init-from", str(base)]
    code, log = _main([*args, *option], caplog)
    assert code == 2
    assert shown in log and "Drop them" in log
    assert not (tmp_path / "split1" / "model.pt").exists()


def test_init_from_with_resume_is_refused_saying_why(
    base: Path, videos: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    args = [*RUN, "--data-dir", str(videos), "--out", str(tmp_path)]
    code, log = _main([*args, "--init-from", str(base), "--resume"], caplog)
    assert code == 2
    assert "--resume continues a run from its own last.pt" in log and "choose one" in log


@pytest.mark.parametrize(
    ("content", "said"),
    [(None, "no such checkpoint file"), (b"not a model\n", "not a readable checkpoint")],
)
def test_a_missing_or_unreadable_init_checkpoint_is_a_clear_error(
    videos: Path,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    content: bytes | None,
    said: str,
) -> None:
    given = tmp_path / "given.pt"
    if content is not None:
        given.write_bytes(content)
    args = [*RUN, "--data-dir", str(videos), "--out", str(tmp_path / "runs")]
    code, log = _main([*args, "--init-from", str(given)], caplog)
    assert code == 2
    assert f"--init-from: {given}" in log and said in log and "Give a model.pt" in log
    assert "Traceback" not in log


def test_freezing_a_backbone_of_random_weights_is_refused(
    videos: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    args = [*RUN, "--data-dir", str(videos), "--out", str(tmp_path), "--backbone", "r2plus1d_mini"]
    code, log = _main([*args, "--freeze-backbone"], caplog)
    assert code == 2 and "--freeze-backbone keeps the backbone as it starts" in log


def test_without_the_kinetics_weights_the_error_names_init_from_and_scratch(
    videos: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    offline_torch_home(tmp_path / "torch", monkeypatch)
    args = [*RUN, "--data-dir", str(videos), "--out", str(tmp_path / "runs")]
    code, log = _main(args, caplog)  # folders: the Kinetics-400 backbone by default
    assert code == 2
    assert "r2plus1d_18-91a641e6.pth" in log  # where the file goes, as before
    assert "--init-from MODEL" in log and "--pretrained none" in log
    assert "pretrained=None" not in log  # the trainer's options, not the library's


def test_hmdb51_split_hash_is_of_its_files_in_name_order(tmp_path: Path) -> None:
    splits = tmp_path / "splits"
    splits.mkdir()
    files = {"kick_ball_test_split1.txt": b"b.avi 1 \n", "kick_test_split1.txt": b"a.avi 2 \n"}
    for name, content in files.items():
        (splits / name).write_bytes(content)
    (splits / "kick_test_split2.txt").write_bytes(b"other split\n")
    # "kick_ball_..." before "kick_test_...", as `LC_ALL=C cat splits/*_test_split1.txt`.
    expected = hashlib.sha256(b"b.avi 1 \n" + b"a.avi 2 \n").hexdigest()
    assert split_sha256(tmp_path, 1) == expected
