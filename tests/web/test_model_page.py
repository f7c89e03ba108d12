"""The model page: the checkpoint registered last, whether a worker has reported a
result of it (served) or still of another, its metrics and the trainer's figures from
the run folder next to it, served by their place in the list, never by name."""

from __future__ import annotations

import json
import re
from pathlib import Path

import cv2
import numpy as np
import pytest
from fastapi.testclient import TestClient

from storage import ingest
from storage.db import make_sessionmaker

from .store import Store


def test_the_model_page_shows_metrics_and_the_run_folders_figures(
    client: TestClient, store: Store, tmp_path: Path
) -> None:
    run = tmp_path / "runs" / "split1"
    run.mkdir(parents=True)
    (run / "metrics.json").write_text(json.dumps({"top1": 0.61, "top5": 0.88}))
    cv2.imwrite(str(run / "confusion_matrix.png"), np.zeros((8, 8, 3), np.uint8))
    cv2.imwrite(str(run / "expert_usage.png"), np.full((6, 4, 3), 255, np.uint8))
    with make_sessionmaker(store.engine).begin() as session:
        ingest.register_model(
            session, "cd" * 32, str(run / "model.pt"), split=1, class_names=["a", "b"],
            metrics={"top1": 0.61},
        )  # fmt: skip
    page = client.get("/model").text
    assert "cd" * 32 in page and "0.61" in page
    assert page.index("Confusion matrix") < page.index("Expert usage")
    shapes = []
    for index in (0, 1):
        figure = client.get(f"/model/figures/{index}.png")
        assert figure.status_code == 200 and figure.content.startswith(b"\x89PNG")
        shapes.append(cv2.imdecode(np.frombuffer(figure.content, np.uint8), cv2.IMREAD_COLOR).shape)
    assert shapes == [(8, 8, 3), (6, 4, 3)]
    assert client.get("/model/figures/2.png").status_code == 404


def test_figures_are_linked_per_model_so_a_newer_models_are_never_the_cached_ones(
    client: TestClient, store: Store, tmp_path: Path
) -> None:
    before, after = _run_folder(tmp_path / "a", "cd" * 32), _run_folder(tmp_path / "b", "ef" * 32)
    _register(store, "cd" * 32, before / "model.pt")
    assert f'src="/model/figures/0.png?model={"cd" * 32}"' in client.get("/model").text
    assert client.get(f"/model/figures/0.png?model={'cd' * 32}").status_code == 200
    _register(store, "ef" * 32, after / "model.pt")  # as retag --checkpoint does
    assert f'src="/model/figures/0.png?model={"ef" * 32}"' in client.get("/model").text
    assert client.get(f"/model/figures/0.png?model={'cd' * 32}").status_code == 404
    assert client.get(f"/model/figures/0.png?model={'ef' * 32}").status_code == 200


def test_the_model_page_without_a_run_folder_says_where_it_looked(client: TestClient) -> None:
    page = client.get("/model").text
    assert "run folder" in page
    assert client.get("/model/figures/0.png").status_code == 404


def _run_folder(folder: Path, checkpoint_sha256: str | None) -> Path:
    """A trainer run folder whose metrics.json names ``checkpoint_sha256`` (None: none)."""
    folder.mkdir(parents=True)
    metrics: dict[str, object] = {"multi_clip": {"top1": 0.33}}
    if checkpoint_sha256 is not None:
        metrics["checkpoint"] = {"path": str(folder / "model.pt"), "sha256": checkpoint_sha256}
    (folder / "metrics.json").write_text(json.dumps(metrics))
    cv2.imwrite(str(folder / "confusion_matrix.png"), np.zeros((8, 8, 3), np.uint8))
    return folder


def _register(store: Store, sha256: str, path: Path, metrics: dict | None = None) -> None:
    with make_sessionmaker(store.engine).begin() as session:
        ingest.register_model(
            session, sha256, str(path), split=1, class_names=["a", "b"], metrics=metrics
        )


def test_runs_split_of_another_checkpoint_is_not_shown(
    client: TestClient, store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    _run_folder(tmp_path / "runs" / "split1", "ef" * 32)
    _register(store, "cd" * 32, tmp_path / "models" / "model.pt")
    page = client.get("/model").text
    assert "Confusion matrix" not in page and "run folder" in page
    assert client.get("/model/figures/0.png").status_code == 404


def test_runs_split_of_the_served_checkpoint_is_shown(
    client: TestClient, store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    _run_folder(tmp_path / "runs" / "split1", "cd" * 32)
    _register(store, "cd" * 32, tmp_path / "models" / "model.pt")
    assert "Confusion matrix" in client.get("/model").text
    assert client.get("/model/figures/0.png").status_code == 200


def test_metrics_beside_the_checkpoint_naming_another_one_are_not_shown(
    client: TestClient, store: Store, tmp_path: Path
) -> None:
    run = _run_folder(tmp_path / "models", "ef" * 32)  # a new checkpoint copied over an old run
    _register(store, "cd" * 32, run / "model.pt")
    assert "Confusion matrix" not in client.get("/model").text


def test_nested_checkpoint_metrics_are_shown_under_dotted_names(
    client: TestClient, store: Store, tmp_path: Path
) -> None:
    metrics = {"validation": {"epoch": 3}, "test": {"multi_clip": {"top1": 0.6125}}}
    _register(store, "cd" * 32, tmp_path / "model.pt", metrics)
    page = client.get("/model").text
    assert "<th>test.multi_clip.top1</th><td>0.6125</td>" in page
    assert "<th>validation.epoch</th><td>3</td>" in page


TEMPORAL = {
    "map": {"0.3": 0.9125, "0.5": 0.75, "0.7": 0.5},
    "mean_map": 0.7208,
    "frame_accuracy": 0.931,
    "videos": 7,
    "per_class_ap": {"<b>fall</b>": {"0.3": 1.0, "0.5": 0.8, "0.7": 0.25}},
}


def test_a_checkpoints_segment_figures_have_a_table_of_their_own(
    client: TestClient, store: Store, tmp_path: Path
) -> None:
    metrics = {"test": {"multi_clip": {"top1": 0.6125}, "temporal": TEMPORAL}}
    _register(store, "cd" * 32, tmp_path / "model.pt", metrics)
    page = client.get("/model").text
    table = page[page.index("Segments in the test videos") :]
    assert "7 test videos" in table
    assert "<th>0.3</th><th>0.5</th><th>0.7</th><th>mean</th>" in table
    assert "<td>0.912</td><td>0.750</td><td>0.500</td><td>0.721</td>" in table
    assert "<strong>93.1%</strong>" in table
    assert "<th>AP &lt;b&gt;fall&lt;/b&gt;</th><td>1.000</td><td>0.800</td><td>0.250</td>" in table
    assert "<b>fall</b>" not in page
    # The flat table keeps the clip figures and leaves these to their own table.
    assert "<th>test.multi_clip.top1</th><td>0.6125</td>" in page
    assert "test.temporal" not in page


def test_the_run_folders_segment_figures_are_shown_when_the_checkpoint_has_none(
    client: TestClient, store: Store, tmp_path: Path
) -> None:
    run = _run_folder(tmp_path / "models", "cd" * 32)
    metrics = json.loads((run / "metrics.json").read_text())
    (run / "metrics.json").write_text(json.dumps({**metrics, "temporal": TEMPORAL}))
    _register(store, "cd" * 32, run / "model.pt")
    assert "<td>0.912</td><td>0.750</td><td>0.500</td><td>0.721</td>" in client.get("/model").text


def test_a_model_without_segment_figures_has_no_segment_table(
    client: TestClient, store: Store, tmp_path: Path
) -> None:
    _register(store, "cd" * 32, tmp_path / "model.pt", {"test": {"multi_clip": {"top1": 0.6}}})
    assert "Segments in the test videos" not in client.get("/model").text


def _served(client: TestClient) -> str:
    found = re.search(r'<dd data-field="served">(.*?)</dd>', client.get("/model").text)
    assert found is not None
    return re.sub(r"\d{4}-\d\d-\d\d \d\d:\d\dZ", "TIME", found.group(1))


def test_a_model_a_worker_reported_a_result_of_is_called_served(
    client: TestClient, store: Store
) -> None:
    assert _served(client) == (
        f"a worker reported its newest result at TIME (job {store.done_job}, "
        "<code>test-worker</code>)"
    )


def test_a_model_registered_after_the_served_one_is_not_called_served_before_a_result(
    client: TestClient, store: Store
) -> None:
    _register(store, "cd" * 32, Path("/models/new.pt"))  # as retag --checkpoint does
    assert _served(client) == (
        "not yet: no worker has reported a result of it; the newest result is of "
        f"<code>/models/model.pt</code> (sha256 <code>{'ab' * 6}</code>), at TIME (job "
        f"{store.done_job}, <code>test-worker</code>): the workers serve that one until they "
        "start with <code>ACTIONTAG_CHECKPOINT=/models/new.pt</code>"
    )
