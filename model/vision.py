"""torchvision, imported without torch._dynamo: every torchvision name the network uses.

``import torchvision`` imports all of torchvision's models, datasets and ops, and one of
them, ``torchvision.ops.roi_align``, takes one helper from ``torch._dynamo.utils``, which
imports the whole of ``torch._dynamo`` (the compiler): close to half of what ``import
torchvision`` costs in CPU (docs/benchmarks.md), paid by every worker start, every
trainer run and every test process, for a compiler none of them runs and an op the
network does not use.

So while torchvision is imported, ``torch._dynamo.utils`` is a stand-in whose
``is_compile_supported`` imports the real function at its first call (roi_align calls
it only on a path the network never takes). Once torchvision is in, the stand-in is
gone from ``sys.modules``: ``torch._dynamo`` and ``torch.compile`` import as they always
do. Where torch._dynamo or torchvision is already imported, nothing is stood in; nor for
a torchvision release whose source was not read for what it takes from torch._dynamo
(the project pins 0.29.1; pyproject.toml allows others): such a release is imported as
it is, slower and correct.
"""

from __future__ import annotations

import sys
import types
from importlib import metadata

import torch  # noqa: F401  (torch itself first: only torch._dynamo is stood in)

__all__ = [
    "TORCHVISION_VERSION",
    "BasicBlock",
    "Conv2Plus1D",
    "R2Plus1D_18_Weights",
    "r2plus1d_18",
    "r3d_18",
    "stand_in_fits",
]

_DYNAMO = "torch._dynamo"
_DYNAMO_UTILS = "torch._dynamo.utils"
# Releases whose only import from torch._dynamo is roi_align's is_compile_supported, as
# their source reads.
_READ_RELEASES = frozenset({"0.29.1"})


def stand_in_fits(torchvision_version: str) -> bool:
    """Whether the stand-in covers all that this torchvision release takes from
    torch._dynamo while it is imported."""
    return torchvision_version.split("+", 1)[0] in _READ_RELEASES  # "0.29.1+cu130" too


def _is_compile_supported(device_type: str) -> bool:
    from torch._dynamo.utils import is_compile_supported

    return is_compile_supported(device_type)


def _import_torchvision() -> str:
    """Import torchvision, torch._dynamo stood in if neither is imported yet; its version."""
    if (
        "torchvision" in sys.modules
        or _DYNAMO in sys.modules
        or not stand_in_fits(metadata.version("torchvision"))
    ):
        import torchvision

        return torchvision.__version__
    utils = types.ModuleType(_DYNAMO_UTILS)
    utils.is_compile_supported = _is_compile_supported  # type: ignore[attr-defined]
    dynamo = types.ModuleType(_DYNAMO)
    dynamo.utils = utils  # type: ignore[attr-defined]
    stand_ins = {_DYNAMO: dynamo, _DYNAMO_UTILS: utils}
    sys.modules.update(stand_ins)
    try:
        import torchvision
    finally:
        for name, module in stand_ins.items():
            if sys.modules.get(name) is module:
                del sys.modules[name]
    return torchvision.__version__


TORCHVISION_VERSION: str = _import_torchvision()

from torchvision.models.video import R2Plus1D_18_Weights, r2plus1d_18, r3d_18  # noqa: E402
from torchvision.models.video.resnet import BasicBlock, Conv2Plus1D  # noqa: E402
