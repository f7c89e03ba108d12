"""model.vision: torchvision without torch._dynamo, and torch._dynamo intact after it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from model.vision import stand_in_fits

REPO = Path(__file__).resolve().parents[2]


def run_fresh(code: str) -> str:
    """``code`` in a fresh interpreter (this process has imported torchvision already)."""
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_building_the_network_does_not_import_the_compiler() -> None:
    out = run_fresh(
        "import sys\n"
        "from model.network import ActionMoEDynamicModel, ModelConfig\n"
        "ActionMoEDynamicModel(config=ModelConfig(backbone='r2plus1d_mini', num_classes=3))\n"
        "print('torch._dynamo' in sys.modules, 'torchvision' in sys.modules)"
    )

    assert out == "False True"


def test_the_compiler_imports_and_compiles_as_usual_afterwards() -> None:
    out = run_fresh(
        "import torch\n"
        "import model.network\n"
        "import torch._dynamo\n"
        "double = torch.compile(lambda x: x * 2, backend='eager')\n"
        "print(type(torch._dynamo.utils).__name__, torch._dynamo.utils.__file__.endswith('utils.py'),"
        " double(torch.ones(2)).tolist())"
    )

    assert out == "module True [2.0, 2.0]"


def test_torchvisions_roi_align_reaches_the_real_compile_check() -> None:
    out = run_fresh(
        "import sys, torch\n"
        "import model.network\n"
        "from torchvision.ops import roi_align\n"
        "helper = sys.modules['torchvision.ops.roi_align'].is_compile_supported\n"
        "boxes = torch.tensor([[0.0, 0.0, 0.0, 4.0, 4.0]])\n"
        "print(helper('cpu'),"
        " tuple(roi_align(torch.rand(1, 2, 8, 8), boxes, (2, 2)).shape))"
    )

    assert out == "True (1, 2, 2, 2)"


def test_only_a_torchvision_release_read_for_it_gets_the_stand_in() -> None:
    assert stand_in_fits("0.29.1")
    assert stand_in_fits("0.29.1+cu130")
    assert not stand_in_fits("0.29.10")
    assert not stand_in_fits("0.30.0")
    assert not stand_in_fits("0.19.1")
