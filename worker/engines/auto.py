"""``auto``: the first engine, in order of measured speed, that runs here and agrees with
fp32 eager on this checkpoint.

The verdict (worker.engines.agreement.runtime_check on probe clips) is computed once per
checkpoint, engine, library versions and device type, and cached like an export
(worker.engines.cache), so a worker's later starts cost no reference run.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch

from model.checkpoint import Checkpoint
from model.transform import VideoTransform
from worker.engines.agreement import probe_clips, run_batched, runtime_check
from worker.engines.base import Engine, EngineUnavailable, clip_shape
from worker.engines.cache import CacheEntry
from worker.engines.torch_engines import EagerEngine

__all__ = ["PROBE_CLIPS", "choose", "verdict"]

log = logging.getLogger(__name__)

EngineFactory = Callable[[Checkpoint, torch.device], Engine]
PROBE_CLIPS = 8
# Bump when runtime_check or probe_clips change. 2: probe clips take the checkpoint's
# mean and std (they were always normalised with Kinetics').
CHECK_VERSION = 2


def choose(
    order: Sequence[str],
    factories: Mapping[str, EngineFactory],
    checkpoint: Checkpoint,
    device: torch.device,
) -> Engine:
    """The first engine of ``order`` that can be made and passes the agreement check."""
    reference: list[Any] = []  # built at most once, only when a verdict is missing
    for name in order:
        try:
            engine = factories[name](checkpoint, device)
        except EngineUnavailable as why:
            log.info("engine %s is not available here: %s", name, why)
            continue
        if name == "eager":
            return engine
        ok, details = verdict(engine, checkpoint, device, reference)
        if ok:
            log.info("engine %s agrees with fp32 eager on probe clips: %s", engine.name, details)
            return engine
        log.warning(
            "engine %s disagrees with fp32 eager on this checkpoint (%s); trying the next",
            engine.name,
            details,
        )
        del engine
    raise EngineUnavailable(f"none of the engines {list(order)} can run here")


def verdict(
    engine: Engine,
    checkpoint: Checkpoint,
    device: torch.device,
    reference: list[Any] | None = None,
) -> tuple[bool, dict[str, Any]]:
    """(passes, agreement figures) of ``engine`` against eager, from the cache if there.

    ``reference`` (a list, empty or holding the eager output) lets one caller share the
    eager run between several engines.
    """
    entry = _verdict_entry(engine, checkpoint, device)

    def measure() -> dict[str, Any]:
        clips = _probe(checkpoint)
        if reference is not None and reference:
            eager_out = reference[0]
        else:
            eager_out = run_batched(EagerEngine(checkpoint, device), clips, batch=2)
            if reference is not None:
                reference.append(eager_out)
        ok, agreement = runtime_check(eager_out, run_batched(engine, clips))
        return {"passes": ok, "agreement": agreement.to_dict()}

    found = entry.get_or_build(lambda folder: measure())
    meta = found[1] if found is not None else measure()
    return bool(meta["passes"]), meta["agreement"]


def _probe(checkpoint: Checkpoint) -> torch.Tensor:
    return probe_clips(PROBE_CLIPS, VideoTransform.from_config(checkpoint.config))


def _verdict_entry(engine: Engine, checkpoint: Checkpoint, device: torch.device) -> CacheEntry:
    c, t, h, w = clip_shape(checkpoint)
    key: dict[str, Any] = {
        "check": CHECK_VERSION,
        "engine": engine.name,
        "device": device.type,
        "torch": torch.__version__.split("+")[0],
        "clip_shape": [c, t, h, w],
    }
    if engine.name.startswith("openvino"):
        from worker.engines.openvino_engine import openvino_version

        key["openvino"] = openvino_version()
    name = f"check-{engine.name}-{device.type}-torch{key['torch']}"
    if "openvino" in key:
        name += f"-ov{key['openvino']}"
    return CacheEntry(checkpoint.path, checkpoint.sha256, f"{name}-{t}x{h}x{w}", key)
