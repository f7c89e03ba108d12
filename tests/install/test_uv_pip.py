"""tools/uv_pip.py: `make install`'s uv takes its packages from where pip is configured to.

The last test installs for real: a wheel that only pip's settings point to (no index,
a find-links folder, as PIP_* variables) must reach a new venv through uv, byte-compiled.
"""

from __future__ import annotations

import base64
import hashlib
import os
import subprocess
import sys
import zipfile
from pathlib import Path

from tools.uv_pip import effective, parse_config_list, uv_arguments

ROOT = Path(__file__).resolve().parents[2]

LISTED = """\
:env:.find-links='/from/the/environment'
global.cert='/etc/ssl/certs/ca-certificates.crt'
global.constraint='/etc/pip/constraints.txt'
global.extra-index-url='file:///opt/one/simple https://mirror.example/simple'
global.find-links='/from/the/global/file'
global.index-url='https://global.example/simple'
install.index-url='https://install.example/simple'
global.disable-pip-version-check='1'
"""


def test_environment_variables_beat_the_install_section_which_beats_global() -> None:
    settings = effective(parse_config_list(LISTED))
    assert settings["find-links"] == "/from/the/environment"
    assert settings["index-url"] == "https://install.example/simple"
    assert settings["constraint"] == "/etc/pip/constraints.txt"


def test_pips_sources_become_uv_options_one_per_listed_item() -> None:
    options, environment, unknown = uv_arguments(effective(parse_config_list(LISTED)))
    pairs = list(zip(options[::2], options[1::2], strict=True))
    assert ("--index-strategy", "unsafe-best-match") in pairs  # pip's look in every index
    assert ("--index-url", "https://install.example/simple") in pairs
    assert ("--extra-index-url", "file:///opt/one/simple") in pairs
    assert ("--extra-index-url", "https://mirror.example/simple") in pairs
    assert ("--find-links", "/from/the/environment") in pairs
    assert ("--constraint", "/etc/pip/constraints.txt") in pairs
    assert environment == {"SSL_CERT_FILE": "/etc/ssl/certs/ca-certificates.crt"}
    assert unknown == []


def test_pips_proxy_is_uvs_for_http_and_https() -> None:
    _, environment, _ = uv_arguments({"proxy": "http://proxy.example:3128"})
    assert environment == {
        "HTTP_PROXY": "http://proxy.example:3128",
        "HTTPS_PROXY": "http://proxy.example:3128",
    }


def test_no_index_is_passed_only_when_pip_turns_it_on() -> None:
    assert "--no-index" in uv_arguments({"no-index": "true"})[0]
    assert "--no-index" not in uv_arguments({"no-index": "0"})[0]


def test_a_pip_setting_uv_cannot_take_is_reported_not_dropped_silently() -> None:
    _, _, unknown = uv_arguments({"require-virtualenv": "1", "quiet": "1"})
    assert unknown == ["require-virtualenv"]


def _write_wheel(folder: Path, name: str, version: str, source: str) -> Path:
    """A minimal pure-Python wheel: one module, its metadata and a RECORD with hashes."""
    dist_info = f"{name}-{version}.dist-info"
    files = {
        f"{name}/__init__.py": source,
        f"{dist_info}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n",
        f"{dist_info}/WHEEL": (
            "Wheel-Version: 1.0\nGenerator: tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
        ),
    }
    record = []
    for path, text in files.items():
        digest = hashlib.sha256(text.encode()).digest()
        encoded = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
        record.append(f"{path},sha256={encoded},{len(text.encode())}")
    record.append(f"{dist_info}/RECORD,,")
    wheel = folder / f"{name}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        for path, text in files.items():
            archive.writestr(path, text)
        archive.writestr(f"{dist_info}/RECORD", "\n".join(record) + "\n")
    return wheel


def test_uv_installs_a_wheel_that_only_pips_settings_point_to(tmp_path: Path) -> None:
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    _write_wheel(wheels, "actiontag_probe", "1.0", "VALUE = 42\n")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    environment = {key: value for key, value in os.environ.items() if not key.startswith("PIP_")}
    environment |= {
        "PIP_NO_INDEX": "1",
        "PIP_FIND_LINKS": str(wheels),
        "UV_CACHE_DIR": str(tmp_path / "uv-cache"),
    }
    installed = subprocess.run(
        [
            sys.executable,
            str(ROOT / "tools" / "uv_pip.py"),
            "install",
            "--python",
            str(venv / "bin" / "python"),
            "--compile-bytecode",
            "actiontag_probe",
        ],
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert installed.returncode == 0, installed.stderr
    value = subprocess.run(
        [
            str(venv / "bin" / "python"),
            "-c",
            "import actiontag_probe; print(actiontag_probe.VALUE)",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert value.strip() == "42"
    purelib = next((venv / "lib").glob("python3*/site-packages"))
    assert list((purelib / "actiontag_probe" / "__pycache__").glob("__init__.*.pyc"))
