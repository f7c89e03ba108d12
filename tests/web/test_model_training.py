"""The model page's account of the served model: when it was registered, its classes
(folded), and how it was trained, from the trainer's record in its checkpoint; every
name from the checkpoint shown as text."""

from __future__ import annotations

import html
from typing import Any

from fastapi.testclient import TestClient

from storage import ingest
from storage.db import make_sessionmaker
from web.training import training_of

from .store import HOSTILE_LABEL, Store

TRAIN_ARGS: dict[str, Any] = {
    "dataset": "segments",
    "data_dir": "/srv/private/warehouse-clips",
    "split": 1,
    "epochs": 3,
    "argv": ["--dataset", "segments", "--annotations", "fixes.csv"],
    "init_from": {"path": "/models/served.pt", "sha256": "ab" * 32, "classifier": "new"},
    "freeze_backbone": True,
    "trained_on": {
        "dataset": "segments",
        "classes": ["forklift loading", "hand-off"],
        "videos": {
            "forklift loading": {"train": 4, "test": 1},
            "hand-off": {"train": 3, "test": 2},
        },
        "split_sha256": "cd" * 32,
    },
}


def _register(store: Store, class_names: list[str], train_args: dict[str, Any] | None) -> None:
    with make_sessionmaker(store.engine).begin() as session:
        ingest.register_model(
            session, "ef" * 32, "/models/new.pt", split=1, class_names=class_names,
            metrics=None, train_args=train_args,
        )  # fmt: skip


def test_the_model_page_says_what_the_served_model_was_trained_on(
    client: TestClient, store: Store
) -> None:
    _register(store, ["forklift loading", "hand-off"], TRAIN_ARGS)
    page = html.unescape(client.get("/model").text)
    assert "<summary>2 classes</summary>forklift loading, hand-off</details>" in page
    assert "<dt>Registered</dt>" in page
    assert "segments, split 1, from the folder <code>warehouse-clips</code>" in page
    assert "/srv/private" not in page  # the folder's name, not the server's layout
    assert "<dt>Epochs</dt><dd>3</dd>" in page
    assert (
        f"<code>/models/served.pt</code> (sha256 <code>{'ab' * 6}</code>), a new classifier" in page
    )
    assert "frozen: the motion module and head trained" in page
    assert (
        "2 classes, 7 training and 3 test videos; split file sha256 <code>cdcdcdcdcdcd</code>"
        in page
    )
    assert "<tr><td>hand-off</td><td>3</td><td>2</td></tr>" in page
    assert "python -m trainer --dataset segments --annotations fixes.csv" in page


def test_names_from_the_checkpoint_are_shown_as_text_on_the_model_page(
    client: TestClient, store: Store
) -> None:
    record = {
        "dataset": HOSTILE_LABEL,
        "trained_on": {"classes": [HOSTILE_LABEL], "videos": {HOSTILE_LABEL: {"train": 1}}},
    }
    _register(store, [HOSTILE_LABEL], record)
    page = client.get("/model").text
    assert "<script>" not in page
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;&amp;\\nfake line" in page


def test_a_model_without_a_training_record_has_no_training_section(
    client: TestClient, store: Store
) -> None:
    _register(store, ["a", "b"], None)
    page = client.get("/model").text
    assert "<h2>Training</h2>" not in page and "<summary>2 classes</summary>" in page


def test_parts_of_the_training_record_of_another_type_are_left_out() -> None:
    record = {
        "dataset": 7,
        "epochs": True,
        "freeze_backbone": "yes",
        "init_from": {"path": "/m.pt", "sha256": 5, "classifier": "<b>"},
        "trained_on": {"classes": "ab", "videos": {"a": 3, "b": {"train": "x", "test": 2}}},
        "argv": "--epochs 3",
    }
    training = training_of(record)
    assert training is not None
    assert (training.dataset, training.epochs, training.freeze_backbone) == (None, None, None)
    assert (training.init_from.path, training.init_from.sha256, training.init_from.classifier) == (
        "/m.pt",
        None,
        None,
    )
    assert training.trained_on is not None and training.trained_on.classes == ()
    assert [(r.name, r.train, r.test) for r in training.trained_on.videos] == [("b", None, 2)]
    assert training.command == ()
    assert training_of(None) is None and training_of({}) is None
