"""One Settings object: flags > environment > env file > defaults, one declaration per setting."""

from __future__ import annotations

import argparse
import dataclasses
from datetime import timedelta
from pathlib import Path

import pytest

from actiontag.settings import (
    COMMANDS,
    COMPONENTS,
    SPEC,
    SettingError,
    Settings,
    add_command_flags,
    add_flags,
    command_settings,
    env_name,
    from_args,
    load_settings,
    read_env_file,
)
from actiontag.settings.spec import BY_NAME

ENV_FILE = """\
# compose's settings and the services' share the file
POSTGRES_PASSWORD=change-me
ACTIONTAG_DEVICE=cpu
ACTIONTAG_INBOX="/srv/videos/drop box"
export ACTIONTAG_TOP_K=3
"""


def test_defaults_work_on_one_machine() -> None:
    settings = load_settings(environ={})

    assert settings == Settings()
    assert settings.database_url == "sqlite:///var/actiontag.db"
    assert settings.broker_url == "sqlite:///var/broker.sqlite"
    assert settings.checkpoint == Path("models/actiontag.pt")
    assert settings.queue == "actiontag"


def test_a_flag_wins_over_the_environment_which_wins_over_the_env_file(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("ACTIONTAG_TOP_K=3\nACTIONTAG_NUM_CLIPS=4\nACTIONTAG_MAX_ATTEMPTS=5\n")
    environ = {"ACTIONTAG_TOP_K": "7", "ACTIONTAG_NUM_CLIPS": "8"}

    settings = load_settings({"top_k": "9"}, environ=environ, env_file=env_file)

    assert (settings.top_k, settings.num_clips, settings.max_attempts) == (9, 8, 5)
    assert settings.engine == "auto"  # nowhere: the default
    assert settings.given == {"top_k", "num_clips", "max_attempts"}


def test_an_empty_variable_counts_as_unset(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("ACTIONTAG_DEVICE=cpu\n")

    settings = load_settings(environ={"ACTIONTAG_DEVICE": "  "}, env_file=env_file)

    assert settings.device == "cpu"


def test_a_bad_value_names_the_flag_or_variable_it_came_from(tmp_path: Path) -> None:
    with pytest.raises(SettingError, match=r"^--top-k='0': 0 must be at least 1$"):
        load_settings({"top_k": "0"}, environ={})
    with pytest.raises(SettingError, match=r"^ACTIONTAG_RESCAN_EVERY='soon': 'soon' is not a"):
        load_settings(environ={"ACTIONTAG_RESCAN_EVERY": "soon"})
    env_file = tmp_path / "host.env"
    env_file.write_text("ACTIONTAG_TASK_TIME_LIMIT=5\n")
    with pytest.raises(SettingError, match=rf"ACTIONTAG_TASK_TIME_LIMIT \(in {env_file}\)='5'"):
        load_settings(environ={}, env_file=env_file)


def test_values_are_typed() -> None:
    settings = load_settings(
        environ={
            "ACTIONTAG_POLL": "yes",
            "ACTIONTAG_STABLE_SECONDS": "500ms",
            "ACTIONTAG_QUEUED_GRACE": "1.5min",
            "ACTIONTAG_MAX_VIDEO_SIZE": "0",
            "ACTIONTAG_LARGE_FILE_SIZE": "1G",
            "ACTIONTAG_QUEUE": "fast, slow",
            "ACTIONTAG_VIDEO_EXTENSIONS": ".MP4 mkv",
            "ACTIONTAG_LOCK_DIR": "~/locks",
        }
    )

    assert settings.poll is True and settings.stable_seconds == 0.5
    assert settings.queued_grace == timedelta(seconds=90)
    assert settings.max_video_size is None  # 0: no limit
    assert settings.large_file_size == 1 << 30
    assert (settings.queues, settings.queue) == (("fast", "slow"), "fast")
    assert settings.video_extensions == frozenset({"mp4", "mkv"})
    assert settings.lock_dir == Path.home() / "locks"


def test_window_spacing_is_a_positive_duration_and_the_cap_a_count() -> None:
    settings = load_settings(
        environ={"ACTIONTAG_WINDOW_EVERY": "500ms", "ACTIONTAG_MAX_WINDOWS": "7200"}
    )
    assert (settings.window_every, settings.max_windows) == (0.5, 7200)
    assert load_settings({"window_every": "2"}, environ={}).window_every == 2.0
    with pytest.raises(SettingError, match=r"^--window-every='0': must be more than 0$"):
        load_settings({"window_every": "0"}, environ={})
    with pytest.raises(SettingError, match=r"^ACTIONTAG_MAX_WINDOWS='0'"):
        load_settings(environ={"ACTIONTAG_MAX_WINDOWS": "0"})


def test_every_field_has_one_spec_entry_with_its_own_variable_and_flag() -> None:
    names = sorted(f.name for f in dataclasses.fields(Settings) if f.name != "given")
    assert sorted(s.name for s in SPEC) == names
    variables = [s.env for s in SPEC]
    flags = [s.flag for s in SPEC if s.flag]
    assert len(set(variables)) == len(variables) and len(set(flags)) == len(flags)
    assert all(v.startswith("ACTIONTAG_") for v in variables)


def test_each_setting_belongs_to_a_component_whose_commands_exist() -> None:
    assert {s.component for s in SPEC} <= set(COMPONENTS)
    assert {command for c in COMPONENTS for command in c.commands} <= set(COMMANDS)
    assert all(s.default == getattr(Settings(), s.name) for s in SPEC)


def test_a_variable_may_be_named_apart_from_its_field() -> None:
    assert env_name("queues") == "ACTIONTAG_QUEUE"
    assert env_name("database_url") == "ACTIONTAG_DATABASE_URL"
    assert load_settings(environ={"ACTIONTAG_QUEUE": "a,b"}).queues == ("a", "b")


# Flags each command has always taken (a new setting adds to them, from its component).
COMMAND_FLAGS = {
    "watcher": {
        "database_url",
        "broker_url",
        "checkpoint",
        "inbox",
        "video_extensions",
        "stable_seconds",
        "poll",
        "poll_interval",
        "reconcile_every",
        "rescan_every",
        "running_timeout",
        "queued_grace",
        "large_file_size",
        "max_video_size",
    },
    "worker": {
        "database_url",
        "broker_url",
        "queues",
        "checkpoint",
        "device",
        "concurrency",
        "engine",
        "num_clips",
        "window_every",
        "max_windows",
        "max_frames",
        "top_k",
        "max_attempts",
        "task_time_limit",
    },
    "web": {
        "database_url",
        "broker_url",
        "inbox",
        "video_extensions",
        "web_host",
        "web_port",
        "upload_max_bytes",
        "upload_idle_timeout",
        "upload_staging_max_age",
        "web_allowed_hosts",
        "web_forwarded_allow_ips",
    },
    "storage": {"database_url"},
    "trainer": {"hmdb51_mirror"},
}


# Flags a command must not take: its variable is read there, but the setting is another's.
NOT_FLAGS = {"watcher": {"queues", "task_time_limit"}, "web": {"queues", "checkpoint"}}


@pytest.mark.parametrize("command", sorted(COMMAND_FLAGS))
def test_a_commands_flags_come_from_its_components(command: str) -> None:
    taken = set(command_settings(command))

    assert COMMAND_FLAGS[command] <= taken
    assert not taken & NOT_FLAGS.get(command, set())
    assert {BY_NAME[name].component.name for name in taken} == {
        c.name
        for c in COMPONENTS
        if command in c.commands and any(s.flag for s in SPEC if s.component is c)
    }


def test_no_secret_is_a_flag() -> None:
    # A flag's value shows in `ps`.
    assert [s.name for s in SPEC if s.secret and s.flag] == []


def test_command_flags_are_grouped_by_component_in_the_help() -> None:
    parser = argparse.ArgumentParser(prog="cmd")
    add_command_flags(parser, "web")
    text = parser.format_help()
    database, web = text.index("\ndatabase settings:"), text.index("\nweb settings:")

    assert database < text.index("  --database-url URL") < web < text.index("  --port PORT")
    settings = from_args(parser, parser.parse_args(["--port", "8080"]), environ={})
    assert (settings.web_port, settings.given) == (8080, {"web_port"})


def test_an_unknown_command_has_no_flags() -> None:
    with pytest.raises(ValueError, match="no such command: nope"):
        command_settings("nope")


def test_each_written_default_reads_back_as_the_default() -> None:
    for setting in SPEC:
        if setting.default_text is None:
            assert setting.parse(setting.describe_default()) == setting.default, setting.name


def parser_with(names: list[str]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cmd")
    add_flags(parser, names)
    return parser


def test_each_flag_names_its_variable_and_default_in_its_help() -> None:
    text = parser_with(["queued_grace", "poll"]).format_help()

    assert "--queued-grace DURATION" in text and "$ACTIONTAG_QUEUED_GRACE; default 5m" in text
    assert "--poll, --no-poll" in text and "$ACTIONTAG_POLL" in text


def test_flags_parse_into_settings_over_the_environment() -> None:
    parser = parser_with(["top_k", "poll", "device"])

    settings = from_args(
        parser,
        parser.parse_args(["--top-k", "2", "--no-poll"]),
        environ={"ACTIONTAG_TOP_K": "9", "ACTIONTAG_POLL": "1", "ACTIONTAG_DEVICE": "cpu"},
    )

    assert (settings.top_k, settings.poll, settings.device) == (2, False, "cpu")


def test_a_commands_own_option_of_the_same_name_is_not_a_setting() -> None:
    # The trainer's --top-k is the number of experts per clip, not the worker's top-k.
    parser = parser_with(["hmdb51_mirror"])
    parser.add_argument("--top-k", type=int, default=2)

    settings = from_args(parser, parser.parse_args([]), environ={})

    assert settings.top_k == Settings().top_k


def test_a_bad_flag_value_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    parser = parser_with(["reconcile_every"])

    with pytest.raises(SystemExit) as exited:
        from_args(parser, parser.parse_args(["--reconcile-every", "0"]), environ={})

    assert exited.value.code == 2
    assert "--reconcile-every='0': must be more than 0" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("flag", "value", "message"),
    [
        ("reconcile_every", "99999999999999999999d", "too long a duration: at most 5200w"),
        ("max_video_size", "9" * 400, "too large a size: at most 1048576T"),
        ("max_windows", str(1 << 63), f"must be at most {(1 << 63) - 1}"),
    ],
    ids=["duration", "size", "integer"],
)
def test_a_flag_value_past_the_largest_is_a_usage_error_saying_the_most(
    capsys: pytest.CaptureFixture[str], flag: str, value: str, message: str
) -> None:
    parser = parser_with([flag])
    option = "--" + flag.replace("_", "-")

    with pytest.raises(SystemExit) as exited:
        from_args(parser, parser.parse_args([option, value]), environ={})

    assert exited.value.code == 2
    assert message in capsys.readouterr().err


def test_an_env_file_gives_its_actiontag_lines_only(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text(ENV_FILE)

    assert read_env_file(tmp_path / ".env") == {
        "ACTIONTAG_DEVICE": "cpu",
        "ACTIONTAG_INBOX": "/srv/videos/drop box",
        "ACTIONTAG_TOP_K": "3",
    }


def test_a_missing_env_file_gives_nothing(tmp_path: Path) -> None:
    assert read_env_file(tmp_path / ".env") == {}
    assert load_settings(environ={}, env_file=tmp_path / ".env") == Settings()
