"""Loading the helper modules that sit beside a folder's conftest.

pytest's importlib import mode does not put a test folder on ``sys.path``, so a conftest
loads its helpers by path, each once, under a name of the folder's own.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType


def load_helper(folder: Path, prefix: str, name: str) -> ModuleType:
    """The module ``folder/name.py``, imported once as ``prefix.name``."""
    module_name = f"{prefix}.{name}"
    if module_name in sys.modules:
        return sys.modules[module_name]
    spec = importlib.util.spec_from_file_location(module_name, folder / f"{name}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module  # dataclasses look their module up here
    spec.loader.exec_module(module)
    return module
