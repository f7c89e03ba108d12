"""The source keeps its configuration and imports in order: only actiontag.settings reads
an ACTIONTAG_* variable, and the imports between the shipped packages run one way."""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.support.packages import PACKAGES

REPO = Path(__file__).resolve().parents[2]
SETTINGS_MODULE = "actiontag.settings"
# The packages each may import (besides itself). Entry points (__main__) are left out of
# the package graph: nothing imports them, so they compose packages without a cycle.
ALLOWED = {
    "actiontag": set(),
    # Decoding knows videos and frames only: nothing of the network, the store or torch.
    "decoding": {"actiontag"},
    # The model's view of a video (model.transform) is clips read through decoding.video.
    "model": {"actiontag", "decoding"},
    # Windows are placed on decoding's frame index and its seek rule; shots are found in
    # frames decoded for them.
    "timeline": {"actiontag", "decoding"},
    # The store keeps the timeline's values (timeline.values, standard library only).
    "storage": {"actiontag", "timeline"},
    # The trainer's dataset probes and reads clips itself to cache their uint8 frames; a
    # segment dataset's test videos are tagged by the worker's own predictor (its windows
    # and timeline), so the figures are those of the segments a worker stores.
    "trainer": {"actiontag", "decoding", "model", "timeline", "worker"},
    # The predictor probes a video, streams its windows and handles decoding's VideoError;
    # it places the windows and makes the timeline from their scores and the shot cuts.
    "worker": {"actiontag", "decoding", "model", "storage", "timeline"},
    "watcher": {"actiontag", "storage", "worker"},
    # The web app opens videos as the worker does (worker.video_file) and checks the
    # broker through worker.app; it shows the store's timelines (timeline.values). It never
    # imports the model, decoding or the watcher.
    "web": {"actiontag", "storage", "timeline", "worker"},
    "launcher": {"actiontag", "model", "trainer", "worker", "watcher", "storage"},
}
# No import cycle between modules (the trainer's CLI and its motion videos' generator
# each stand alone since the demo recipe lives in launcher/demo_recipe.py).
KNOWN_CYCLES: set[frozenset[str]] = set()


@dataclass(frozen=True)
class Module:
    name: str  # dotted
    path: Path
    tree: ast.Module

    @property
    def package(self) -> str:
        return self.name.split(".")[0]

    @property
    def entry_point(self) -> bool:
        return self.name.rsplit(".", 1)[-1] == "__main__"


def modules() -> Iterator[Module]:
    for package in PACKAGES:
        for path in sorted((REPO / package).rglob("*.py")):
            parts = path.relative_to(REPO).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            yield Module(name, path, ast.parse(path.read_text(encoding="utf-8"), str(path)))


# -- reading the environment ----------------------------------------------------------


def _is_environ(node: ast.AST) -> bool:
    """``os.environ`` or a bare ``environ`` (from os import environ)."""
    if isinstance(node, ast.Attribute):
        return node.attr == "environ" and isinstance(node.value, ast.Name)
    return isinstance(node, ast.Name) and node.id == "environ"


def _setting_key(node: ast.AST | None) -> bool:
    """A key that is, or may be, an ACTIONTAG_* name: such a literal, or any computed key
    (only a literal naming something else, XDG_CACHE_HOME, is known to be harmless)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value.startswith("ACTIONTAG_")
    return node is not None


def environment_reads(tree: ast.AST) -> list[tuple[int, str]]:
    """(line, what) for each read or write of an ACTIONTAG_* variable in ``tree``."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Subscript) and _is_environ(node.value):
            if isinstance(node.ctx, ast.Load):
                if _setting_key(node.slice):
                    found.append((node.lineno, "os.environ[...]"))
            else:
                found.append((node.lineno, "os.environ[...] ="))  # exporting a setting
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            func = node.func
            key = node.args[0] if node.args else None
            if _is_environ(func.value) and func.attr in ("get", "pop", "setdefault"):
                if _setting_key(key):
                    found.append((node.lineno, f"os.environ.{func.attr}(...)"))
            elif _is_environ(func.value) and func.attr == "update":
                found.append((node.lineno, "os.environ.update(...)"))
            elif func.attr == "getenv" and _setting_key(key):
                found.append((node.lineno, "os.getenv(...)"))
        elif (
            isinstance(node, ast.Compare)
            and any(isinstance(op, ast.In | ast.NotIn) for op in node.ops)
            and any(_is_environ(c) for c in node.comparators)
            and _setting_key(node.left)
        ):
            found.append((node.lineno, "... in os.environ"))
    return found


def test_the_walk_finds_every_kind_of_read_and_write() -> None:
    source = """
import os
a = os.environ.get("ACTIONTAG_CHECKPOINT", "")
b = os.environ["ACTIONTAG_DEVICE"]
c = os.getenv("ACTIONTAG_QUEUE")
d = os.environ.get(NAME)
os.environ["ACTIONTAG_BROKER_URL"] = "x"
os.environ.update({"ACTIONTAG_TOP_K": "3"})
e = "ACTIONTAG_INBOX" in os.environ
"""
    assert [line for line, _ in environment_reads(ast.parse(source))] == [3, 4, 5, 6, 7, 8, 9]


def test_the_walk_leaves_other_variables_and_child_environments_alone() -> None:
    source = """
import os
home = os.environ.get("XDG_CACHE_HOME", "")
rank = int(os.environ.get("RANK", "0"))
child = {k: v for k, v in os.environ.items() if not k.startswith("ACTIONTAG_")}
also = {**os.environ, "LC_ALL": "C.UTF-8"}
"""
    assert environment_reads(ast.parse(source)) == []


def test_only_the_settings_module_reads_an_actiontag_variable() -> None:
    readers = {
        f"{module.path.relative_to(REPO)}:{line}: {what}"
        for module in modules()
        if module.name != SETTINGS_MODULE and not module.name.startswith(f"{SETTINGS_MODULE}.")
        for line, what in environment_reads(module.tree)
    }
    assert not readers, f"read ACTIONTAG_* through actiontag.settings instead: {sorted(readers)}"


# -- imports --------------------------------------------------------------------------


def imported(module: Module) -> set[str]:
    """Every module ``module`` imports, at any depth of its code (function-level and
    TYPE_CHECKING imports too: each is a dependency)."""
    names: set[str] = set()
    for node in ast.walk(module.tree):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against the module's package
                base = module.name.split(".")
                base = base[: len(base) - node.level + (module.path.name == "__init__.py")]
                prefix = ".".join(base + ([node.module] if node.module else []))
            else:
                prefix = node.module or ""
            names.add(prefix)
            names |= {f"{prefix}.{alias.name}" for alias in node.names}
    return names


def by_string(module: Module) -> list[int]:
    """Lines that import a module by name at run time (importlib, __import__)."""
    lines = []
    for node in ast.walk(module.tree):
        if isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if name in ("import_module", "__import__"):
                lines.append(node.lineno)
    return lines


def test_imports_between_packages_run_one_way() -> None:
    wrong = {}
    for module in modules():
        if module.entry_point:
            continue
        packages = {name.split(".")[0] for name in imported(module)} & set(PACKAGES)
        extra = packages - ALLOWED[module.package] - {module.package}
        if extra:
            wrong[module.name] = sorted(extra)
    assert not wrong, f"imports against the layering of docs/DESIGN.md: {wrong}"


def test_no_package_imports_the_tests_or_the_benchmarks() -> None:
    """Their helpers (tests/probes.py, tests/support/stack.py) are not in the distribution."""
    offenders = {
        module.name: sorted(
            name for name in imported(module) if name.split(".")[0] in ("tests", "bench")
        )
        for module in modules()
    }
    assert {name: found for name, found in offenders.items() if found} == {}


def test_decoding_imports_no_torch() -> None:
    """Decoding is numpy, OpenCV and PyAV: what only reads videos (a DataLoader worker, the
    shot detector) never loads torch; the network's tensor is model.transform's."""
    offenders = {
        module.name: sorted(
            name for name in imported(module) if name.split(".")[0] in ("torch", "torchvision")
        )
        for module in modules()
        if module.package == "decoding"
    }
    assert {name: found for name, found in offenders.items() if found} == {}


def test_storage_and_the_web_app_take_only_the_values_from_the_timeline() -> None:
    """timeline.values is standard library only; the rest of the timeline imports numpy,
    OpenCV and decoding, which neither needs."""
    offenders = {
        module.name: sorted(
            name
            for name in imported(module)
            if name.split(".")[0] == "timeline" and name.split(".")[:2] != ["timeline", "values"]
        )
        for module in modules()
        if module.package in ("storage", "web")
    }
    assert {name: found for name, found in offenders.items() if found} == {}


def test_importing_the_timeline_values_loads_no_numpy_opencv_pyav_or_torch() -> None:
    """What storage and the web app import of the timeline, in a fresh interpreter."""
    check = "import sys, timeline.values; print(' '.join(sorted(sys.modules)))"
    done = subprocess.run(
        [sys.executable, "-c", check], capture_output=True, text=True, cwd=REPO, check=True
    )
    heavy = ("numpy", "cv2", "av", "torch", "scenedetect", "decoding")
    loaded = {name.split(".")[0] for name in done.stdout.split()}
    assert loaded & set(heavy) == set()


def test_storage_imports_neither_the_worker_the_web_app_nor_celery() -> None:
    offenders = {
        module.name: sorted(
            name
            for name in imported(module)
            if name.split(".")[0] in ("worker", "watcher", "web", "celery", "kombu")
        )
        for module in modules()
        if module.package == "storage" and not module.entry_point
    }
    assert {name: found for name, found in offenders.items() if found} == {}


def test_no_module_imports_another_by_its_name_at_run_time() -> None:
    found = {module.name: by_string(module) for module in modules()}
    assert {name: lines for name, lines in found.items() if lines} == {}


def cycles(graph: dict[str, set[str]]) -> set[frozenset[str]]:
    """The modules of each strongly connected component of more than one module."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: set[frozenset[str]] = set()

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = set()
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.add(top)
                if top == node:
                    break
            if len(component) > 1:
                found.add(frozenset(component))

    for node in graph:
        if node not in index:
            visit(node)
    return found


def test_the_cycle_finder_finds_a_cycle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(graph) == {frozenset({"a", "b", "c"})}


def test_no_two_modules_import_each_other() -> None:
    all_modules = list(modules())
    names = {module.name for module in all_modules}
    graph = {
        module.name: {
            name
            for name in imported(module)
            if name in names
            and name != module.name
            and not name.endswith("__main__")
            # a package's __init__ is imported by its own modules' import; not an edge back
            and not module.name.startswith(name + ".")
        }
        for module in all_modules
    }
    assert cycles(graph) == KNOWN_CYCLES
