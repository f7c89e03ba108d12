"""Trial: would OpenVINO int8 pass the engines' agreement bar? (It does not, so no int8
engine is offered; worker/engines/__init__.py.)

The network of bench/inference.py (its checkpoint and the real clips it cached in
--work, so run that benchmark first) is exported as the ``openvino`` engine exports it,
quantized to int8 by NNCF's post-training quantization calibrated on the clips of some
real videos, and compared with fp32 eager on the clips of the others: ms per clip at
batch 1 against eager and ``openvino`` (bf16) in the same run, and the agreement figures
the engines are held to (top-1 on >= 99% of clips, expert usage within 0.02).

Variants: ``all`` quantizes every layer NNCF would; ``backbone`` leaves the motion
module, the fusion, the MoE and the classifier in bf16.

    .venv/bin/pip install nncf
    .venv/bin/python bench/int8_trial.py --work var/bench-inference
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from model.checkpoint import load_checkpoint
from worker.engines.agreement import compare, run_batched
from worker.engines.openvino_engine import OpenVINOEngine, _convert
from worker.engines.torch_engines import EagerEngine

HEAD = r".*network\.(motion|fuse|moe|classifier).*"


def ms_per_clip(engine, clip: torch.Tensor, repeats: int) -> float:
    engine(clip)
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        engine(clip)
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--work",
        type=Path,
        default=Path("var/bench-inference"),
        help="bench/inference.py's work folder: its model.pt and cached clips (default %(default)s)",
    )
    parser.add_argument(
        "--calibration-videos",
        type=int,
        default=6,
        help="videos whose clips calibrate the quantization; the rest test it (default %(default)s)",
    )
    parser.add_argument(
        "--repeats", type=int, default=5, help="timed forwards per engine (default %(default)s)"
    )
    parser.add_argument(
        "--threads", type=int, default=2, help="CPU threads per engine (default %(default)s)"
    )
    args = parser.parse_args()
    try:
        import nncf
        import openvino  # noqa: F401  (nncf quantizes OpenVINO models)
    except ImportError as exc:
        raise SystemExit(f"{exc}: `.venv/bin/pip install nncf` first") from exc
    torch.set_num_threads(args.threads)

    checkpoint = load_checkpoint(args.work / "model.pt")
    files = sorted((args.work / "clips-6").glob("*.pt"))
    if len(files) <= args.calibration_videos:
        raise SystemExit(f"no cached clips in {args.work}: run bench/inference.py first")
    motion = [f for f in files if f.name.startswith("motion")]
    calibration_files = motion[-args.calibration_videos :]
    calibration = torch.cat([torch.load(f) for f in calibration_files])
    test = torch.cat([torch.load(f) for f in files if f not in calibration_files])
    print(f"calibration: {calibration.shape[0]} clips; test: {test.shape[0]} clips")

    exported = _convert(checkpoint)
    eager = EagerEngine(checkpoint, torch.device("cpu"))
    reference = run_batched(eager, test, batch=2)
    clip = test[:1]
    rows = [("eager fp32", ms_per_clip(eager, clip, 3), None)]
    bf16 = OpenVINOEngine.of_model(exported, "bf16")
    rows.append(("openvino bf16", ms_per_clip(bf16, clip, args.repeats), bf16))
    dataset = nncf.Dataset(list(calibration.split(1)), lambda x: np.ascontiguousarray(x.numpy()))
    for variant, ignored in (("all", None), ("backbone", nncf.IgnoredScope(patterns=[HEAD]))):
        quantized = nncf.quantize(
            exported, dataset, subset_size=calibration.shape[0], ignored_scope=ignored
        )
        engine = OpenVINOEngine.of_model(quantized, "bf16")
        rows.append((f"int8 {variant}", ms_per_clip(engine, clip, args.repeats), engine))

    eager_ms = rows[0][1]
    print(f"\n{'engine':16s} {'ms/clip':>8s} {'x eager':>8s}  top-1   experts  usage-d  passes")
    for name, ms, engine in rows:
        line = f"{name:16s} {ms:8.1f} {eager_ms / ms:8.2f}"
        if engine is not None:
            agreement = compare(reference, run_batched(engine, test, batch=4))
            line += (
                f"  {agreement.top1:6.2%}  {agreement.experts:6.2%}  "
                f"{agreement.usage_diff:.4f}   {agreement.passes()}"
            )
        print(line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
