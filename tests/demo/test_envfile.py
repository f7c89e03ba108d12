"""`make up` reads the ACTIONTAG_* lines of .env where the environment sets nothing
(actiontag.settings, for itself and for the services it starts)."""

from __future__ import annotations

from pathlib import Path

from actiontag.settings import environment_with, load_settings

ENV_FILE = """\
# compose's settings and the services' share the file
POSTGRES_PASSWORD=change-me
ACTIONTAG_DEVICE=cpu
ACTIONTAG_INBOX="/srv/videos/drop box"
export ACTIONTAG_TOP_K=3
"""


def test_actiontag_settings_apply_where_the_environment_sets_none(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text(ENV_FILE)
    environ = {"PATH": "/usr/bin"}
    env, applied = environment_with(tmp_path / ".env", environ)
    assert applied == {
        "ACTIONTAG_DEVICE": "cpu",
        "ACTIONTAG_INBOX": "/srv/videos/drop box",
        "ACTIONTAG_TOP_K": "3",
    }
    assert env == {"PATH": "/usr/bin", **applied}
    settings = load_settings(environ=environ, env_file=tmp_path / ".env")
    assert (settings.device, str(settings.inbox), settings.top_k) == (
        "cpu",
        "/srv/videos/drop box",
        3,
    )


def test_the_environment_wins_over_the_file(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text(ENV_FILE)
    environ = {"ACTIONTAG_DEVICE": "cuda:1"}
    env, applied = environment_with(tmp_path / ".env", environ)
    assert "ACTIONTAG_DEVICE" not in applied
    assert env["ACTIONTAG_DEVICE"] == "cuda:1"
    assert load_settings(environ=environ, env_file=tmp_path / ".env").device == "cuda:1"


def test_an_empty_variable_takes_the_files_value_for_the_services_too(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text(ENV_FILE)
    environ = {"ACTIONTAG_DEVICE": ""}
    env, _ = environment_with(tmp_path / ".env", environ)
    assert env["ACTIONTAG_DEVICE"] == "cpu"
    assert load_settings(environ=environ, env_file=tmp_path / ".env").device == "cpu"


def test_compose_only_settings_stay_out_of_the_services_environment(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text(ENV_FILE)
    env, _ = environment_with(tmp_path / ".env", {})
    assert "POSTGRES_PASSWORD" not in env


def test_a_missing_file_applies_nothing(tmp_path: Path) -> None:
    assert environment_with(tmp_path / ".env", {}) == ({}, {})
