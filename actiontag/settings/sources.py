"""Reading the settings: flags > environment > env file > defaults.

The only module that reads an ``ACTIONTAG_*`` variable, so nothing reads the environment
behind its caller's back. python-dotenv is imported only to read an env file.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from actiontag.settings.spec import BY_NAME, ENV_PREFIX, SPEC, Settings


class SettingError(ValueError):
    """A setting has a value no process can use; the message names where it came from."""


def read_env_file(path: Path) -> dict[str, str]:
    """The ``ACTIONTAG_*`` lines of ``path`` (docker compose's ``.env`` syntax); nothing
    when there is no such file. Its other keys (``POSTGRES_PASSWORD``…) are compose's."""
    if not path.is_file():
        return {}
    from dotenv import dotenv_values  # only the launcher reads an env file

    return {
        key: value
        for key, value in dotenv_values(path).items()
        if key.startswith(ENV_PREFIX) and value is not None
    }


def environment_with(
    env_file: Path, environ: Mapping[str, str] | None = None
) -> tuple[dict[str, str], dict[str, str]]:
    """For services a launcher starts: ``environ`` (default: this process's environment)
    with the ``ACTIONTAG_*`` lines of ``env_file`` where a variable is unset or empty, as
    :func:`load_settings` reads them; and the lines so added."""
    base = dict(os.environ if environ is None else environ)
    added = {
        key: value
        for key, value in read_env_file(env_file).items()
        if not base.get(key, "").strip()
    }
    return {**base, **added}, added


def load_settings(
    flags: Mapping[str, Any] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    env_file: Path | None = None,
) -> Settings:
    """The settings from ``flags`` (setting name -> a flag's text or typed value; None
    counts as not given), else ``environ`` (default: this process's environment), else
    ``env_file``'s ``ACTIONTAG_*`` lines, else the defaults. An empty variable counts as
    unset. Raises :class:`SettingError` naming the flag or variable of a bad value."""
    given = {name: value for name, value in (flags or {}).items() if value is not None}
    unknown = sorted(set(given) - set(BY_NAME))
    if unknown:
        raise SettingError(f"no such setting: {', '.join(unknown)}")
    variables = os.environ if environ is None else environ
    from_file = read_env_file(env_file) if env_file is not None else {}
    values: dict[str, Any] = {}
    for setting in SPEC:
        if setting.name in given:
            raw = given[setting.name]
            source = setting.flag or setting.name
            if not isinstance(raw, str):  # already typed (a switch, or a caller's value)
                values[setting.name] = raw
                continue
        elif variables.get(setting.env, "").strip():
            raw, source = variables[setting.env].strip(), setting.env
        elif from_file.get(setting.env, "").strip():
            raw, source = from_file[setting.env].strip(), f"{setting.env} (in {env_file})"
        else:
            continue
        try:
            values[setting.name] = setting.parse(raw)
        except ValueError as exc:
            shown = "(hidden)" if setting.secret else repr(raw)
            raise SettingError(f"{source}={shown}: {exc}") from None
    return Settings(**values, given=frozenset(values))
