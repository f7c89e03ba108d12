"""Exports and verdicts are built once per checkpoint, found again, and never half-written."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from actiontag.settings import env_name, load_settings
from model.checkpoint import load_checkpoint
from worker import predictor as predictor_module
from worker.engines import cache
from worker.engines.cache import META_FILE, NEXT_TO_CHECKPOINT, CacheEntry
from worker.engines.openvino_engine import openvino_has_bf16
from worker.predictor import make_inference_engine

CPU = torch.device("cpu")


@pytest.fixture
def fresh_checkpoint(
    checkpoint_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Path:
    """The session's checkpoint copied into a folder of its own (no cache beside it yet),
    with a cache home of this test's own."""
    monkeypatch.delenv("ACTIONTAG_ENGINE_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    (tmp_path / "models").mkdir()
    return Path(shutil.copy2(checkpoint_path, tmp_path / "models" / "model.pt"))


@pytest.fixture
def cache_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("ACTIONTAG_ENGINE_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    return tmp_path / "xdg" / "actiontag"


def _entry(folder: Path, sha: str = "ab" * 32, name: str = "thing-v1") -> CacheEntry:
    return CacheEntry(folder / "model.pt", sha, name, {"engine": "thing"})


def _write_payload(folder: Path) -> dict[str, str]:
    (folder / "payload").write_text("built")
    return {"file": "payload"}


def test_the_export_is_cached_next_to_the_checkpoint_under_its_sha256(
    fresh_checkpoint: Path,
) -> None:
    checkpoint = load_checkpoint(fresh_checkpoint)

    engine = make_inference_engine("openvino-fp32", checkpoint, CPU)

    root = fresh_checkpoint.parent / NEXT_TO_CHECKPOINT
    assert engine.cache_path is not None and engine.cache_path.parent == root / checkpoint.sha256
    name = engine.cache_path.name
    assert name.startswith("openvino-ov") and "-torch" in name and name.endswith("-8x48x48")
    meta = json.loads((engine.cache_path / META_FILE).read_text())
    assert meta["checkpoint_sha256"] == checkpoint.sha256
    assert meta["clip_shape"] == [3, 8, 48, 48]
    assert (engine.cache_path / "model.xml").is_file()
    assert (engine.cache_path / "model.bin").is_file()

    stamp = (engine.cache_path / "model.bin").stat().st_mtime_ns
    again = make_inference_engine("openvino", checkpoint, CPU)  # bf16 compiles the same file

    assert again.cache_path == engine.cache_path
    assert (again.cache_path / "model.bin").stat().st_mtime_ns == stamp


def test_each_checkpoint_sha256_gets_its_own_entry(tmp_path: Path, cache_home: Path) -> None:
    first = _entry(tmp_path, "ab" * 32).get_or_build(_write_payload)
    second = _entry(tmp_path, "ef" * 32).get_or_build(_write_payload)

    assert first[0] == tmp_path / NEXT_TO_CHECKPOINT / ("ab" * 32) / "thing-v1"
    assert second[0] == tmp_path / NEXT_TO_CHECKPOINT / ("ef" * 32) / "thing-v1"


def test_an_existing_entry_is_found_without_building(tmp_path: Path, cache_home: Path) -> None:
    built = _entry(tmp_path).get_or_build(_write_payload)

    def must_not_run(folder: Path) -> dict[str, str]:
        raise AssertionError("built twice")

    assert _entry(tmp_path).get_or_build(must_not_run) == built


def test_a_checkpoint_folder_that_cannot_be_written_caches_under_xdg_cache_home(
    tmp_path: Path, cache_home: Path
) -> None:
    # Root ignores permission bits, so make the folder unusable the way a file can.
    (tmp_path / NEXT_TO_CHECKPOINT).write_text("not a folder")

    folder, _ = _entry(tmp_path).get_or_build(_write_payload)

    assert folder == cache_home / ("ab" * 32) / "thing-v1"


@pytest.fixture
def chosen_root() -> Iterator[None]:
    """The process's engine_cache setting is set by the test (cache.configure), then
    cleared."""
    yield
    cache.configure(None)


def test_actiontag_engine_cache_names_the_cache_folder(
    tmp_path: Path, cache_home: Path, chosen_root: None
) -> None:
    settings = load_settings(environ={env_name("engine_cache"): str(tmp_path / "chosen")})
    cache.configure(settings.engine_cache)

    folder, _ = _entry(tmp_path).get_or_build(_write_payload)

    assert folder == tmp_path / "chosen" / ("ab" * 32) / "thing-v1"


def test_no_writable_folder_means_no_entry_and_the_caller_builds_in_memory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, chosen_root: None
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    cache.configure(blocker / "a")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker / "b"))
    (tmp_path / NEXT_TO_CHECKPOINT).write_text("not a folder")

    assert _entry(tmp_path).get_or_build(_write_payload) is None


def test_an_entry_with_a_broken_meta_file_is_rebuilt(tmp_path: Path, cache_home: Path) -> None:
    folder, _ = _entry(tmp_path).get_or_build(_write_payload)
    (folder / META_FILE).write_text('{"checkpoint_sha256": "trunc')

    again, meta = _entry(tmp_path).get_or_build(_write_payload)

    assert again == folder and meta["checkpoint_sha256"] == "ab" * 32
    assert sorted(p.name for p in folder.parent.iterdir()) == ["thing-v1", "thing-v1.lock"]


def test_an_entry_built_for_other_versions_is_not_used(tmp_path: Path, cache_home: Path) -> None:
    folder, _ = _entry(tmp_path).get_or_build(_write_payload)
    newer = CacheEntry(tmp_path / "model.pt", "ab" * 32, "thing-v1", {"engine": "thing2"})

    found = newer.find()

    assert found is None and folder.is_dir()


def test_a_build_that_fails_leaves_no_entry_and_no_staging_folder(
    tmp_path: Path, cache_home: Path
) -> None:
    entry = _entry(tmp_path)

    def broken(folder: Path) -> dict[str, str]:
        (folder / "half.bin").write_bytes(b"x" * 10)
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        entry.get_or_build(broken)

    parent = tmp_path / NEXT_TO_CHECKPOINT / ("ab" * 32)
    assert [p.name for p in parent.iterdir()] == ["thing-v1.lock"]
    assert entry.find() is None


# The builders load worker/engines/cache.py by its path: it needs only the standard
# library, and the worker.engines package would load torch and OpenVINO (0.8 GB and
# seconds of CPU in each of three processes at once, beside the test process's own).
_BUILDER = textwrap.dedent(
    """
    import importlib.util, sys, time
    from pathlib import Path

    spec = importlib.util.spec_from_file_location("engine_cache", sys.argv[3])
    cache = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(cache)

    log = Path(sys.argv[1])
    entry = cache.CacheEntry(Path(sys.argv[2]), "cd" * 32, "slow-v1", {"engine": "slow"})

    def build(folder):
        with open(log, "a") as f:
            f.write("build\\n")
        time.sleep(2)
        (folder / "payload").write_text("complete")
        return {"file": "payload"}

    folder, meta = entry.get_or_build(build)
    print((folder / meta["file"]).read_text())
    """
)


def test_concurrent_processes_build_an_entry_once_and_all_read_it(tmp_path: Path) -> None:
    log = tmp_path / "builds.log"
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "xdg")}
    env.pop("ACTIONTAG_ENGINE_CACHE", None)
    argv = [sys.executable, "-c", _BUILDER, str(log), str(tmp_path / "model.pt"), cache.__file__]
    processes = [
        subprocess.Popen(argv, stdout=subprocess.PIPE, text=True, env=env) for _ in range(3)
    ]
    try:
        outputs = [p.communicate(timeout=60)[0].strip() for p in processes]
    finally:
        for process in processes:  # none left behind when one hangs
            process.kill()
            process.wait()

    assert [p.returncode for p in processes] == [0, 0, 0]
    assert outputs == ["complete"] * 3
    assert log.read_text().splitlines() == ["build"]
    parent = tmp_path / NEXT_TO_CHECKPOINT / ("cd" * 32)
    assert sorted(p.name for p in parent.iterdir()) == ["slow-v1", "slow-v1.lock"]


def test_auto_picks_openvino_and_caches_its_verdict(checkpoint_path: Path) -> None:
    checkpoint = load_checkpoint(checkpoint_path)

    engine = make_inference_engine("auto", checkpoint, CPU)

    assert engine.name == ("openvino" if openvino_has_bf16() else "openvino-fp32")
    root = checkpoint_path.parent / NEXT_TO_CHECKPOINT / checkpoint.sha256
    (verdict,) = [p for p in root.glob(f"check-{engine.name}-cpu-*") if p.is_dir()]
    meta = json.loads((verdict / META_FILE).read_text())
    assert meta["passes"] is True and meta["agreement"]["clips"] == 8


def test_auto_skips_an_engine_that_disagrees_with_eager(
    checkpoint_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    class Scrambled(predictor_module.EagerEngine):
        """Eager with its class probabilities rolled by one: always wrong."""

        name = "scrambled"

        def __call__(self, batch: torch.Tensor):
            out = super().__call__(batch)
            return type(out)(out.probs.roll(1, dims=1), out.gates, out.indices)

    monkeypatch.setitem(predictor_module.ENGINES, "scrambled", Scrambled)
    monkeypatch.setitem(predictor_module.AUTO_ENGINES, "cpu", ("scrambled", "openvino-fp32"))
    checkpoint = load_checkpoint(checkpoint_path)

    engine = make_inference_engine("auto", checkpoint, CPU)

    assert engine.name == "openvino-fp32"
    root = checkpoint_path.parent / NEXT_TO_CHECKPOINT / checkpoint.sha256
    (verdict,) = [p for p in root.glob("check-scrambled-cpu-*") if p.is_dir()]
    assert json.loads((verdict / META_FILE).read_text())["passes"] is False


def test_an_engine_that_cannot_run_on_the_device_is_refused_with_the_reason(
    fresh_checkpoint: Path,
) -> None:
    checkpoint = load_checkpoint(fresh_checkpoint)

    with pytest.raises(ValueError, match=r"'openvino' cannot run here: .*on the CPU"):
        make_inference_engine("openvino", checkpoint, torch.device("cuda"))
