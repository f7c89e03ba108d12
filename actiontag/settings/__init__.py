"""Every setting of every actiontag process, read once: flags > environment > env file > defaults.

Each setting is one field of :class:`Settings` (``actiontag.settings.spec``): its
component, default, ``ACTIONTAG_*`` variable, flag, parser and help in one declaration.
A command adds the flags of the components it uses with :func:`add_command_flags` (or
of settings it names, :func:`add_flags`) and turns its parsed arguments into a
:class:`Settings` with :func:`from_args`; that object is then passed to whatever needs
it (``make_app``, the worker's pool processes, the watcher service, the database). This
package is the only code that reads an ``ACTIONTAG_*`` variable
(``actiontag.settings.sources``), so a flag, its variable and its help cannot drift
apart, and nothing reads the environment behind its caller's back.
docs/configuration.md is written from the declarations (``actiontag.settings.reference``).

One syntax for durations and one for sizes everywhere (``actiontag.settings.grammar``).
Standard library only (python-dotenv is imported only to read an env file).
"""

from __future__ import annotations

from actiontag.settings.flags import add_command_flags, add_flags, from_args
from actiontag.settings.grammar import (
    MAX_DURATION,
    MAX_INTEGER,
    MAX_SIZE,
    MIN_TOKEN_LENGTH,
    OutOfRange,
    format_duration,
    format_size,
    parse_bool,
    parse_duration,
    parse_extensions,
    parse_size,
)
from actiontag.settings.sources import (
    SettingError,
    environment_with,
    load_settings,
    read_env_file,
)
from actiontag.settings.spec import (
    COMMANDS,
    COMPONENTS,
    DEFAULT_VIDEO_EXTENSIONS,
    ENV_PREFIX,
    SPEC,
    Component,
    Setting,
    Settings,
    command_settings,
    env_name,
)

__all__ = [
    "COMMANDS",
    "COMPONENTS",
    "DEFAULT_VIDEO_EXTENSIONS",
    "ENV_PREFIX",
    "MAX_DURATION",
    "MAX_INTEGER",
    "MAX_SIZE",
    "MIN_TOKEN_LENGTH",
    "SPEC",
    "Component",
    "OutOfRange",
    "Setting",
    "SettingError",
    "Settings",
    "add_command_flags",
    "add_flags",
    "command_settings",
    "env_name",
    "environment_with",
    "format_duration",
    "format_size",
    "from_args",
    "load_settings",
    "parse_bool",
    "parse_duration",
    "parse_extensions",
    "parse_size",
    "read_env_file",
]
