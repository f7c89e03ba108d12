"""Inference engines for worker.predictor: one network, several ways to run it.

==================  =====================================================  ==============
name                what runs                                               auto order
==================  =====================================================  ==============
``openvino``        the exported network, OpenVINO CPU plugin, bf16 where   CPU: 1st
                    the CPU has it (else fp32)
``bf16``            PyTorch, bf16 autocast + channels_last_3d (+ cuDNN      CPU: 2nd,
                    benchmark on CUDA)                                      CUDA: 1st
``openvino-fp32``   the exported network, OpenVINO, fp32                    no
``eager``           PyTorch fp32, the reference                             last
==================  =====================================================  ==============

``auto`` takes the first of its device's order that can run here and agrees with eager
(worker.engines.auto); exports and verdicts are cached on disk per checkpoint
(worker.engines.cache). The order is the speed measured by bench/inference.py.

Not offered, because measured (docs/benchmarks.md): OpenVINO int8 (NNCF post-training
quantization of the backbone, calibrated on real clips; bench/int8_trial.py) is fast but
falls below the agreement bar (top-1 on 99% of real clips); torch.compile is no faster
than ``bf16``; ONNX Runtime is slower than OpenVINO.
"""

from __future__ import annotations

from worker.engines.base import Engine, EngineOutput, EngineUnavailable, ServingModel
from worker.engines.openvino_engine import openvino_bf16, openvino_fp32
from worker.engines.torch_engines import Bf16Engine, EagerEngine

__all__ = [
    "AUTO_ORDER",
    "FACTORIES",
    "Bf16Engine",
    "EagerEngine",
    "Engine",
    "EngineOutput",
    "EngineUnavailable",
    "ServingModel",
]

FACTORIES = {
    "eager": EagerEngine,
    "bf16": Bf16Engine,
    "openvino": openvino_bf16,
    "openvino-fp32": openvino_fp32,
}
# Fastest first, as measured on CPU by bench/inference.py; CUDA has no exported engine.
AUTO_ORDER = {"cpu": ("openvino", "bf16", "eager"), "cuda": ("bf16", "eager")}
