"""A command's flags for its settings, and their values read back into :class:`Settings`."""

from __future__ import annotations

import argparse
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from actiontag.settings.grammar import parse_bool
from actiontag.settings.sources import SettingError, load_settings
from actiontag.settings.spec import BY_NAME, COMPONENTS, Settings, command_settings

# Where add_flags puts a setting's flag in the argparse namespace: apart from the
# command's own options (the trainer's --top-k is the MoE's, not the worker's).
_DEST = "setting:"


def add_flags(
    parser: Any, names: Iterable[str], *, defaults: Mapping[str, str] | None = None
) -> None:
    """Add the flags of settings ``names`` to ``parser`` (or an argument group), each
    help naming its variable and its default (``defaults``: another text for a command
    that does otherwise when a setting is not given); :func:`from_args` reads them back."""
    for name in names:
        setting = BY_NAME[name]
        if setting.flag is None:
            raise ValueError(f"the setting {name} has no flag")
        default = (defaults or {}).get(name) or setting.describe_default()
        text = f"{setting.help} (${setting.env}; default {default})"
        options: dict[str, Any] = {
            "dest": _DEST + name,
            "default": None,
            "help": text.replace("%", "%%"),  # argparse formats help with %
        }
        if setting.parse is parse_bool:
            options["action"] = argparse.BooleanOptionalAction
        else:
            options["metavar"] = setting.metavar
        parser.add_argument(setting.flag, **options)


def from_args(
    parser: argparse.ArgumentParser,
    args: argparse.Namespace,
    *,
    environ: Mapping[str, str] | None = None,
    env_file: Path | None = None,
) -> Settings:
    """The settings from ``args`` (parsed by ``parser``, flags added by :func:`add_flags`),
    the environment and ``env_file``; a bad value is a usage error (exit 2)."""
    flags = {
        key.removeprefix(_DEST): value for key, value in vars(args).items() if key.startswith(_DEST)
    }
    try:
        return load_settings(flags, environ=environ, env_file=env_file)
    except SettingError as exc:
        parser.error(str(exc))
        raise  # parser.error exits; this keeps type checkers informed


def add_command_flags(parser: argparse.ArgumentParser, command: str) -> None:
    """Add the flags of every setting ``command`` takes (:func:`command_settings`), one
    argument group per component, so its help reads as the configuration reference does."""
    names = set(command_settings(command))
    for component in COMPONENTS:
        taken = [name for name in BY_NAME if name in names and BY_NAME[name].component is component]
        if taken:
            group = parser.add_argument_group(f"{component.name} settings", component.summary)
            add_flags(group, taken)
