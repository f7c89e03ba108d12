"""`make up` reads the ACTIONTAG_* lines of .env where the environment sets nothing."""

from __future__ import annotations

from pathlib import Path

from launcher.envfile import load_env_file

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
    applied = load_env_file(tmp_path / ".env", environ)
    assert applied == {
        "ACTIONTAG_DEVICE": "cpu",
        "ACTIONTAG_INBOX": "/srv/videos/drop box",
        "ACTIONTAG_TOP_K": "3",
    }
    assert environ == {"PATH": "/usr/bin", **applied}


def test_the_environment_wins_over_the_file(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text(ENV_FILE)
    environ = {"ACTIONTAG_DEVICE": "cuda:1"}
    applied = load_env_file(tmp_path / ".env", environ)
    assert "ACTIONTAG_DEVICE" not in applied
    assert environ["ACTIONTAG_DEVICE"] == "cuda:1"


def test_compose_only_settings_stay_out_of_the_services_environment(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text(ENV_FILE)
    environ: dict[str, str] = {}
    load_env_file(tmp_path / ".env", environ)
    assert "POSTGRES_PASSWORD" not in environ


def test_a_missing_file_applies_nothing(tmp_path: Path) -> None:
    environ: dict[str, str] = {}
    assert load_env_file(tmp_path / ".env", environ) == {}
    assert environ == {}
