"""Checkpoints: the trained weights plus what is needed to serve them, in a file that
``torch.load(weights_only=True)`` reads without running any pickled code.

A checkpoint is a dict of tensors and plain values (str, int, float, bool, None, lists,
dicts with str keys). Its sha256 is the model's identity in the database. The file also
records a sha256 of its own content (metadata as canonical JSON + every tensor's name,
dtype, shape and bytes): torch's zip reader does not check the tensors' bytes, so
without it a flipped bit in the weights would load silently. Saving is deterministic:
the same weights and metadata give the same file, hence the same identity.
"""

from __future__ import annotations

import hashlib
import json
import logging
import numbers
import os
import pickle
import platform
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import metadata as importlib_metadata
from pathlib import Path, PurePath
from typing import Any

import torch
from torch import Tensor, nn
from torch.overrides import TorchFunctionMode

from model.network import ActionMoEDynamicModel, ModelConfig, build_model
from model.vision import TORCHVISION_VERSION

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "Checkpoint",
    "CheckpointError",
    "file_sha256",
    "load_checkpoint",
    "save_checkpoint",
    "weight_mismatch",
]

log = logging.getLogger(__name__)

FORMAT = "actiontag.checkpoint"
FORMAT_VERSION = 1
_CHUNK = 1 << 20


class CheckpointError(Exception):
    """The file is not a checkpoint this code can serve: unreadable, tampered with,
    carrying pickled objects, or made for an incompatible network."""


@dataclass
class Checkpoint:
    path: Path
    sha256: str
    class_names: list[str]
    config: ModelConfig
    split: int | None
    train_args: dict[str, Any]
    metrics: dict[str, Any]
    versions: dict[str, str]
    state_dict: dict[str, Tensor]

    def build_model(self, device: str | torch.device = "cpu") -> ActionMoEDynamicModel:
        """The network with these weights (loaded strictly), on ``device``, in eval mode."""
        model = build_model(self.config)
        self._load_into(model)
        return model.to(device).eval()

    def check_fits(self) -> None:
        """Raise :class:`CheckpointError` unless the weights load strictly into the
        network the config describes, as :meth:`build_model` would, without building it:
        on the meta device the network has its tensors' shapes but no memory and no
        random initialisation (for R(2+1)D-18, most of what building it costs)."""
        with torch.device("meta"), _ShapesOnly():
            model = build_model(self.config)
        # assign: the meta model takes the checkpoint's tensors as they are (nothing is
        # copied into meta tensors, which torch warns about, once per tensor).
        self._load_into(model, assign=True)

    def _load_into(self, model: ActionMoEDynamicModel, *, assign: bool = False) -> None:
        mismatch = weight_mismatch(model.state_dict(), self.state_dict)
        try:
            if mismatch is not None:
                raise RuntimeError(mismatch)
            model.load_state_dict(self.state_dict, strict=True, assign=assign)
        except RuntimeError as exc:
            raise CheckpointError(
                f"{self.path}: its weights do not fit the network its config describes "
                f"({exc}); made with {self.versions}. Serve a checkpoint this version of "
                "the code saved (retrain, or take the model.pt the trainer wrote)."
            ) from exc


class _ShapesOnly(TorchFunctionMode):
    """Building a network on the meta device, skip the initialisers: a meta tensor has
    no values to set, and for some of them (``normal_``) torch's meta implementation
    imports torch._dynamo, the compiler, which a worker would otherwise import at every
    start for nothing."""

    def __torch_function__(
        self,
        func: Any,
        types: Any,
        args: tuple[Any, ...] = (),
        kwargs: dict[str, Any] | None = None,
    ) -> Any:
        kwargs = kwargs or {}
        if func in _INITIALISERS:
            # torch.nn.init passes its tensor by keyword; Tensor methods get it first.
            tensor = args[0] if args else kwargs.get("tensor")
            if isinstance(tensor, Tensor) and tensor.is_meta:
                return tensor
        return func(*args, **kwargs)


# The in-place fills that torch.nn.init's functions and modules' reset_parameters end in.
_INITIALISERS = frozenset(
    {
        Tensor.normal_,
        Tensor.uniform_,
        Tensor.fill_,
        Tensor.zero_,
        nn.init.normal_,
        nn.init.uniform_,
        nn.init.trunc_normal_,
    }
)


def weight_mismatch(
    expected: Mapping[str, Tensor], found: Mapping[str, Tensor], shown: int = 3
) -> str | None:
    """What keeps ``found`` from loading strictly where ``expected`` is the network's state
    dict: tensors of another shape, missing and unexpected, a few names of each then a
    count (a full list runs to hundreds of lines); None when it fits."""
    shared = sorted(set(expected) & set(found))
    groups = {
        "of another shape": [
            f"{name} {tuple(found[name].shape)} (the network has {tuple(expected[name].shape)})"
            for name in shared
            if tuple(found[name].shape) != tuple(expected[name].shape)
        ],
        "missing": sorted(set(expected) - set(found)),
        "unexpected": sorted(set(found) - set(expected)),
    }
    parts = []
    for what, names in groups.items():
        if names:
            more = f" and {len(names) - shown} more" if len(names) > shown else ""
            parts.append(f"{len(names)} tensor(s) {what}: {', '.join(names[:shown])}{more}")
    return "; ".join(parts) or None


def file_sha256(path: str | os.PathLike[str]) -> str:
    """sha256 of a file, read in 1 MiB chunks (a checkpoint is far larger than a chunk)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def save_checkpoint(
    path: str | os.PathLike[str],
    model: nn.Module,
    *,
    class_names: list[str],
    split: int | None = None,
    train_args: dict[str, Any] | None = None,
    metrics: dict[str, Any] | None = None,
) -> str:
    """Write ``model`` and its metadata to ``path`` atomically; return the file's sha256.

    ``model`` may be wrapped (DistributedDataParallel, torch.compile). Metadata must be
    plain: numbers (numpy scalars included) and paths are converted, tuples become
    lists; anything else (an argparse.Namespace, a tensor, a custom object) raises
    TypeError naming where it is, before anything is written.
    """
    path = Path(path)
    model = _unwrap(model)
    class_names = _checked_class_names(class_names, model.config.num_classes)
    if split is not None and (isinstance(split, bool) or not isinstance(split, int)):
        raise TypeError(f"split must be an int or None, got {split!r}")
    meta = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "class_names": class_names,
        "config": model.config.to_dict(),
        "split": split,
        "train_args": _plain_metadata(train_args or {}, "train_args"),
        "metrics": _plain_metadata(metrics or {}, "metrics"),
        "versions": _plain_metadata(library_versions(), "versions"),
    }
    state_dict = {k: _plain(v) for k, v in model.state_dict().items()}
    payload = {
        **meta,
        "state_dict": state_dict,
        "content_sha256": _content_digest(meta, state_dict),
    }
    sha256 = _atomic_save(payload, path)
    log.info("saved checkpoint %s (sha256 %s)", path, sha256)
    return sha256


def load_checkpoint(path: str | os.PathLike[str], map_location: Any = "cpu") -> Checkpoint:
    """Read and verify a checkpoint written by save_checkpoint; raise CheckpointError
    (saying what is wrong and what to do) for anything else."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    sha256 = file_sha256(path)
    payload = _weights_only_load(path, map_location)
    _check_structure(path, payload)
    meta = {k: v for k, v in payload.items() if k not in ("state_dict", "content_sha256")}
    try:
        digest = _content_digest(meta, payload["state_dict"])
    except (TypeError, ValueError, RuntimeError) as exc:  # metadata JSON cannot encode
        raise CheckpointError(f"{path}: metadata is not plain data: {exc}") from exc
    if digest != payload["content_sha256"]:
        raise CheckpointError(
            f"{path}: content does not match its recorded checksum; the file was modified "
            f"or corrupted after it was saved. Copy it again from its source."
        )
    try:
        config = ModelConfig.from_dict(payload["config"])
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"{path}: its model config is not valid here: {exc}") from exc
    _checked_class_names_or_error(path, payload["class_names"], config.num_classes)
    return Checkpoint(
        path=path,
        sha256=sha256,
        class_names=list(payload["class_names"]),
        config=config,
        split=payload["split"],
        train_args=payload["train_args"],
        metrics=payload["metrics"],
        versions=payload["versions"],
        state_dict=payload["state_dict"],
    )


def library_versions() -> dict[str, str]:
    try:
        actiontag = importlib_metadata.version("actiontag")
    except importlib_metadata.PackageNotFoundError:
        actiontag = "unknown (not installed)"
    return {
        "actiontag": actiontag,
        "torch": torch.__version__,
        "torchvision": TORCHVISION_VERSION,
        "python": platform.python_version(),
    }


def _unwrap(model: nn.Module) -> ActionMoEDynamicModel:
    # torch.compile keeps the original in _orig_mod, DDP/DataParallel in module.
    while not isinstance(model, ActionMoEDynamicModel):
        inner = getattr(model, "_orig_mod", None) or getattr(model, "module", None)
        if not isinstance(inner, nn.Module):
            raise TypeError(
                f"save_checkpoint needs an ActionMoEDynamicModel (optionally wrapped by DDP or "
                f"torch.compile), got {type(model).__name__}"
            )
        model = inner
    return model


def _checked_class_names(class_names: Any, num_classes: int) -> list[str]:
    if not isinstance(class_names, (list, tuple)) or not all(
        isinstance(c, str) for c in class_names
    ):
        raise TypeError("class_names must be a list of str, in label order")
    if len(class_names) != num_classes:
        raise ValueError(
            f"got {len(class_names)} class names for a model with {num_classes} classes"
        )
    if len(set(class_names)) != len(class_names):
        raise ValueError("class_names contains duplicates")
    return list(class_names)


def _checked_class_names_or_error(path: Path, class_names: Any, num_classes: int) -> None:
    try:
        _checked_class_names(class_names, num_classes)
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"{path}: {exc}") from exc


def _plain_metadata(value: Any, where: str) -> Any:
    """A copy of value made only of types weights_only can load, or TypeError."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        return str.__str__(value)  # an exact str, also for str subclasses (enums)
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value)
    if isinstance(value, PurePath):
        return str(value)
    if isinstance(value, (list, tuple)):
        return [_plain_metadata(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, dict):
        out = {}
        for key, v in value.items():
            if not isinstance(key, str):
                raise TypeError(f"{where} has a non-str key {key!r}; metadata keys must be str")
            out[str(key)] = _plain_metadata(v, f"{where}[{key!r}]")
        return out
    raise TypeError(
        f"{where} is a {type(value).__module__}.{type(value).__qualname__}; checkpoint "
        f"metadata must be plain (str, int, float, bool, None, list, dict). Convert it first, "
        f"e.g. vars(namespace), tensor.item(), str(obj)."
    )


def _plain(tensor: Tensor) -> Tensor:
    """``tensor`` on the CPU with the standard strides, whatever layout the model was
    trained in (the trainer's channels-last on the CPU): the same weights make the same
    file. Not ``contiguous()``: it keeps a channels-last tensor with size-1 dimensions
    (a 1x1x1 convolution's weight) as it is, odd strides and all."""
    tensor = tensor.detach().to("cpu")
    if tensor.stride() == torch.empty(tensor.shape, device="meta").stride():
        return tensor
    return tensor.clone(memory_format=torch.contiguous_format)


def _content_digest(meta: dict[str, Any], state_dict: dict[str, Tensor]) -> str:
    digest = hashlib.sha256()
    digest.update(json.dumps(meta, sort_keys=True, separators=(",", ":")).encode())
    for name in sorted(state_dict):
        tensor = state_dict[name].detach().to("cpu").contiguous()
        digest.update(f"\n{name}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def _atomic_save(payload: dict[str, Any], path: Path) -> str:
    """torch.save to a temporary file beside ``path``, fsync, rename; return its sha256.

    A reader (a worker) sees either the old file or the new one, never half of one.
    Writing through a file object keeps the zip's record names independent of the
    temporary name, so the bytes depend only on the content.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    # Not mkstemp: its 0600 mode would hide the checkpoint from workers running as
    # another user; open(..., "xb") honours the umask like any other file.
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    try:
        with open(tmp, "xb") as f:
            torch.save(payload, f)
            f.flush()
            os.fsync(f.fileno())
        sha256 = file_sha256(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)
    return sha256


def _fsync_dir(directory: Path) -> None:
    # Makes the rename itself durable; not supported on every platform/filesystem.
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _weights_only_load(path: Path, map_location: Any) -> Any:
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        reason = _pickled_object_reason(exc)
        if reason:
            raise CheckpointError(
                f"{path} carries pickled Python objects, which are refused because loading "
                f"them could run arbitrary code. Only checkpoints written by "
                f"model.checkpoint.save_checkpoint can be served. ({reason})"
            ) from exc
        raise CheckpointError(f"{path} is not a readable checkpoint: {exc}") from exc
    except Exception as exc:
        # A damaged zip or pickle stream surfaces as almost any exception type.
        raise CheckpointError(
            f"{path} is not a readable checkpoint (truncated, corrupted or another kind "
            f"of file): {type(exc).__name__}: {exc}"
        ) from exc


# What torch's weights-only unpickler says when the stream names a class or function
# (as opposed to bytes that are not a pickle at all).
_OBJECT_REFUSALS = re.compile(r"GLOBAL|Can only (create|build)|unrecognized function")


def _pickled_object_reason(exc: Exception) -> str:
    """The line of torch's message naming the refused object, or "" if there is none.

    torch's message is mostly advice on loading untrusted files anyway; keep the line
    that says what was found."""
    for line in str(exc).splitlines():
        if _OBJECT_REFUSALS.search(line):
            return line.strip().split(". Please use")[0]
    return ""


_REQUIRED: dict[str, type | tuple[type, ...]] = {
    "class_names": list,
    "config": dict,
    "split": (int, type(None)),
    "train_args": dict,
    "metrics": dict,
    "versions": dict,
    "state_dict": dict,
    "content_sha256": str,
}


def _check_structure(path: Path, payload: Any) -> None:
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(
            f"{path} is a torch file but not an actiontag checkpoint (no format={FORMAT!r}); "
            f"save models with model.checkpoint.save_checkpoint"
        )
    version = payload.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise CheckpointError(
            f"{path} has checkpoint format version {version!r}; this actiontag reads up to "
            f"{FORMAT_VERSION}. Upgrade actiontag to serve it."
        )
    for key, kind in _REQUIRED.items():
        if not isinstance(payload.get(key), kind):
            raise CheckpointError(f"{path}: field {key!r} is missing or has the wrong type")
    if not all(
        isinstance(k, str) and isinstance(v, Tensor) for k, v in payload["state_dict"].items()
    ):
        raise CheckpointError(f"{path}: state_dict must map parameter names to tensors")
