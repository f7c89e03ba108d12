"""``make demo``: the whole service on its embedded default, from a fresh checkout.

Everything lives under one folder (``var/demo/`` by default): the demonstration model
(kept between runs), and this run's SQLite database, embedded broker, inbox, logs and
report (made afresh each run, so every run shows the whole flow). A user's own
``var/actiontag.db``, broker and ``inbox/`` are never touched.

Steps: get a checkpoint (the configured one, or the demonstration model, trained once);
prepare the samples; start a watcher and a worker as separate processes and wait until
both are ready; drop the samples into the inbox; wait for every job to end; stop both
services (SIGTERM, exit codes checked); print ``python -m storage list``, the longer
sample's timeline and segments (``python -m storage show``; with the demonstration
model, how well they match the sample's truth) and write ``python -m storage report``.
With ``--serve`` the web app starts with the other two, and the three stay up after the
results are printed, serving them until Ctrl-C. The services are stopped on every path
out: success, failure, timeout, Ctrl-C.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from actiontag.settings import env_name
from launcher import samples as sample_files
from launcher.demo_model import DemoModel, cached_demo_checkpoint, train_demo_checkpoint
from launcher.outcomes import Outcome, format_outcomes, judge
from launcher.progress import TaggingTimeout, wait_for_jobs
from launcher.services import address, watcher_spec, web_spec, worker_spec
from launcher.supervisor import (
    Interrupted,
    Service,
    ServiceFailed,
    Stopped,
    Supervisor,
)
from storage.db import create_sqlite_database
from storage.queries.jobs import ResultRow
from storage.schema import JobState

CHECKPOINT_ENV = env_name("checkpoint")

# The demo's videos are seconds long: the worker's warm shutdown finishes one quickly.
WORKER_STOP_S = 120.0

EXIT_FAILED = 1
EXIT_USAGE = 2


class DemoError(Exception):
    """The demo cannot go on; the message says why and what to do."""

    def __init__(self, message: str, exit_code: int = EXIT_FAILED) -> None:
        super().__init__(message)
        self.exit_code = exit_code


@dataclass(frozen=True)
class DemoOptions:
    root: Path
    checkpoint: Path | None  # None: the demonstration model
    device: str
    engine: str
    start_timeout_s: float
    timeout_s: float
    serve: bool = False  # then keep serving the results (web app, watcher, worker)
    port: int = 8000  # the web app's, with serve


@dataclass(frozen=True)
class DemoPaths:
    """Where the demo keeps everything, as shown to the user (relative when possible)."""

    root: Path

    @property
    def model(self) -> Path:
        return self.root / "model"

    @property
    def samples(self) -> Path:
        return self.root / "samples"

    @property
    def inbox(self) -> Path:
        # Absolute: the watcher records files under its inbox's absolute path.
        return self.root.absolute() / "inbox"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def report(self) -> Path:
        return self.root / "report"

    @property
    def previews(self) -> Path:
        # Absolute: worker and web app must name the same folder.
        return self.root.absolute() / "previews"

    @property
    def database(self) -> Path:
        return self.root / "actiontag.db"

    @property
    def broker(self) -> Path:
        return self.root / "broker.sqlite"

    @property
    def database_url(self) -> str:
        return f"sqlite:///{self.database}"

    @property
    def broker_url(self) -> str:
        return f"sqlite:///{self.broker}"

    def run_state(self) -> list[Path]:
        """What one run makes; removed before the next (the model stays)."""
        files = [
            Path(f"{db}{suffix}")
            for db in (self.database, self.broker)
            for suffix in ("", "-wal", "-shm", "-journal")
        ]
        return [*files, self.inbox, self.logs, self.report, self.previews]


def run_demo(options: DemoOptions, repo: Path, out: TextIO = sys.stdout) -> int:
    """Run the demo; the exit status (0: every sample ended as expected)."""
    paths = DemoPaths(shown(options.root))
    say = _Say(out)
    say(
        f"actiontag demo: everything goes under {paths.root}/ "
        "(your own database, broker and inbox/ are not touched)"
    )
    try:
        checkpoint, demo_model = _checkpoint(options, paths, say)
        samples = _samples(paths, repo, say)
    except DemoError as exc:
        say.error(str(exc))
        return exc.exit_code
    _reset(paths)
    # Watcher and worker start at once; the worker does not create a SQLite file.
    create_sqlite_database(paths.database_url)
    # With --serve the web app starts with them, and the three go on after the results
    # are judged: served by the processes that made them (none stopped and started
    # again), and the pages show the jobs as they end.
    web_port = options.port if options.serve else None
    services = _services(options, paths, checkpoint, web_port=web_port)
    jobs: dict[str, ResultRow] = {}
    code: int | None = None  # the judged results' exit status, once judged
    failure: str | None = None
    interrupted: Interrupted | None = None
    with Supervisor(services) as supervisor:
        try:
            jobs = _tag(supervisor, options, paths, samples, say)
            if options.serve:
                code = _judge(samples, demo_model, paths, jobs, (), say)
                _serve(supervisor, options, say)
        except Interrupted as exc:
            interrupted = exc
        except ServiceFailed as exc:
            failure = str(exc)
        except TaggingTimeout as exc:
            failure = "\n".join([str(exc), *(service.log_report() for service in services)])
        why = f" ({interrupted} received)" if interrupted else ""
        say.step(f"stopping {_in_order(services)}{why}")
        stopped = supervisor.stop()
    say("  " + "; ".join(s.describe() for s in stopped))
    if failure is not None:
        say.error(failure)
        return EXIT_FAILED
    if code is None:  # the results are judged once the services are stopped
        if interrupted is not None:
            return interrupted.exit_code
        return _judge(samples, demo_model, paths, jobs, stopped, say)
    # Served until Ctrl-C: that is how it ends, so the judged status stands.
    unclean = [s for s in stopped if not s.clean]
    if unclean:
        say.error(f"{', '.join(s.name for s in unclean)} did not stop cleanly; see {paths.logs}/")
        return EXIT_FAILED
    return code


def _judge(
    samples: Sequence[sample_files.Sample],
    demo_model: DemoModel | None,
    paths: DemoPaths,
    jobs: dict[str, ResultRow],
    stopped: Sequence[Stopped],
    say: _Say,
) -> int:
    """Print the results, judge each sample, write the report; the exit status."""
    table_ok = _print_results(paths, say) and _print_segments(paths, say, demo_model is not None)
    # The synthetic clips' motions are a promise of the demonstration model only.
    outcomes = judge(samples, jobs, paths.inbox, check_motions=demo_model is not None)
    _print_outcomes(outcomes, say)
    report_ok = _write_report(paths, say)
    return _verdict(samples, outcomes, paths, jobs, stopped, table_ok and report_ok, say)


def _serve(supervisor: Supervisor, options: DemoOptions, say: _Say) -> None:
    """Serve the demo's results (pages, API, uploads tagged by the same watcher and
    worker) until Ctrl-C (raised as Interrupted) or until a service fails."""
    say.step("serving the results: the web app, with the watcher and the worker for uploads")
    say(
        f"  the demo's results are at {address('127.0.0.1', options.port)} "
        "(pages, API at /docs; uploads are tagged too). Ctrl-C stops."
    )
    supervisor.run_until_interrupted()


def _in_order(services: Sequence[Service]) -> str:
    """The order the services stop in: "the watcher, then the worker[, then the web app]"."""
    return ", then ".join(f"the {_NOUNS.get(s.name, s.name)}" for s in services)


_NOUNS = {"web": "web app"}


def shown(path: Path) -> Path:
    """``path`` relative to the current folder when it lies inside it, else absolute."""
    absolute = path.absolute()
    try:
        return absolute.relative_to(Path.cwd())
    except ValueError:
        return absolute


def _checkpoint(options: DemoOptions, paths: DemoPaths, say: _Say) -> tuple[Path, DemoModel | None]:
    """The checkpoint to serve, and the demonstration model's figures when it is that."""
    if options.checkpoint is not None:
        if not options.checkpoint.is_file():
            raise DemoError(
                f"the configured checkpoint {options.checkpoint} does not exist "
                f"(from --checkpoint or {CHECKPOINT_ENV}). Point it at a model.pt the "
                f"trainer wrote, or unset {CHECKPOINT_ENV} to let the demo make its own "
                "demonstration model.",
                EXIT_USAGE,
            )
        say.step(f"model: {options.checkpoint} (configured)")
        return shown(options.checkpoint), None
    model = cached_demo_checkpoint(paths.model)
    if model is not None:
        say.step(f"model: {model.checkpoint} (the demonstration model, made by an earlier run)")
    else:
        say.step(
            "model: none yet; training the demonstration model on synthetic motion clips "
            "(not HMDB51). It takes about a minute on a CPU, once: later runs reuse it"
        )
        try:
            model = train_demo_checkpoint(paths.model, progress=say.tty)
        except RuntimeError as exc:
            raise DemoError(str(exc)) from exc
        say(f"  trained {model.checkpoint}")
    motions = " / ".join(name.replace("_", " ") for name in sample_files.demo_classes())
    say(
        "  a demonstration model trained on synthetic motion clips, not on HMDB51: "
        f"it tells {motions} apart, nothing else"
    )
    say(f"  {model.describe()}")
    return model.checkpoint, model


def _samples(paths: DemoPaths, repo: Path, say: _Say) -> list[sample_files.Sample]:
    try:
        samples = sample_files.prepare_samples(paths.samples, repo)
    except FileNotFoundError as exc:
        raise DemoError(str(exc)) from exc
    say.step(f"samples: {len(samples)} files")
    width = max(len(sample.name) for sample in samples)
    for sample in samples:
        say(f"  {sample.name:<{width}}  {sample.what} (expected: {sample.expect.value})")
    return samples


def _reset(paths: DemoPaths) -> None:
    for path in paths.run_state():
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)


def _services(
    options: DemoOptions, paths: DemoPaths, checkpoint: Path, web_port: int | None = None
) -> list[Service]:
    stores = ["--database-url", paths.database_url, "--broker-url", paths.broker_url]
    watcher = watcher_spec(["--inbox", str(paths.inbox), "--checkpoint", str(checkpoint), *stores])
    worker = worker_spec(
        ["--checkpoint", str(checkpoint), "--device", options.device, "--engine",
         options.engine, "--hostname", _node_name(paths), "--preview-dir", str(paths.previews),
         *stores],
        stop_s=WORKER_STOP_S,
    )  # fmt: skip
    specs = [watcher, worker]
    if web_port is not None:
        specs.append(
            web_spec(
                [
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(web_port),
                    "--inbox",
                    str(paths.inbox),
                    "--preview-dir",
                    str(paths.previews),
                    *stores,
                ]
            )
        )
    env = {k: v for k, v in os.environ.items() if not k.startswith("ACTIONTAG_")}
    # Stopped in this order: nothing new is queued once the worker winds down.
    return [
        Service(spec, paths.logs / f"{spec.name}.log", env=env, cwd=Path.cwd()) for spec in specs
    ]


def _node_name(paths: DemoPaths) -> str:
    """A worker name of this demo folder's own: a worker refuses to start under a name
    another live worker on this machine holds (the user's, or another checkout's demo)."""
    folder = hashlib.sha256(str(paths.root.absolute()).encode()).hexdigest()[:8]
    return f"demo-{folder}@%h"


def _tag(
    supervisor: Supervisor,
    options: DemoOptions,
    paths: DemoPaths,
    samples: Sequence[sample_files.Sample],
    say: _Say,
) -> dict[str, ResultRow]:
    web = " and the web app" if options.serve else ""
    say.step(
        f"starting the watcher, a worker{web}: SQLite database {paths.database}, embedded "
        f"broker {paths.broker}, logs in {paths.logs}/"
    )
    started = time.monotonic()
    paths.inbox.mkdir(parents=True, exist_ok=True)
    supervisor.start(options.start_timeout_s)
    say(f"  all ready after {time.monotonic() - started:.0f} s")
    landed = sample_files.drop(samples, paths.inbox)
    say.step(
        f"dropped {len(landed)} files into {paths.inbox}/; waiting for their jobs "
        f"(at most {options.timeout_s:.0f} s)"
    )
    started = time.monotonic()
    jobs = wait_for_jobs(
        paths.database_url,
        [str(path) for path in landed],
        timeout_s=options.timeout_s,
        check=supervisor.check,
        out=say.out,
    )
    say(f"  all {len(jobs)} jobs ended after {time.monotonic() - started:.0f} s")
    return jobs


def _print_results(paths: DemoPaths, say: _Say) -> bool:
    say.step("results, from the database:")
    return _storage(say, "--database-url", paths.database_url, "list")


def _print_segments(paths: DemoPaths, say: _Say, truth_known: bool) -> bool:
    sequence = paths.inbox / sample_files.SEQUENCE
    say.step(f"what happens when in {sample_files.SEQUENCE}: its timeline and segments")
    shown_ok = _storage(say, "--database-url", paths.database_url, "show", str(sequence))
    if truth_known and shown_ok:
        agreement = sample_files.sequence_agreement(paths.database_url, sequence)
        say(
            f"  against the truth it was rendered from: {agreement.right:.0%} of its time "
            f"labelled right, every true boundary within {agreement.farthest_boundary_s:.1f} s "
            "of a segment boundary"
        )
    return shown_ok


def _print_outcomes(outcomes: Sequence[Outcome], say: _Say) -> None:
    say.step("each file: what the demo expected, and what it got")
    for line in format_outcomes(outcomes):
        say(f"  {line}")


def _write_report(paths: DemoPaths, say: _Say) -> bool:
    say.step("the HTML report:")
    return _storage(
        say, "--database-url", paths.database_url, "report", "--html", str(paths.report)
    )


def _storage(say: _Say, *args: str) -> bool:
    """Run ``python -m storage ARGS`` as a user would, showing the command; True if it worked."""
    say(f"  $ python -m storage {' '.join(args)}")
    say.out.flush()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ACTIONTAG_")}
    done = subprocess.run([sys.executable, "-m", "storage", *args], env=env, stdout=say.out)
    if done.returncode != 0:
        say.error(f"python -m storage {args[-1]} exited with code {done.returncode}")
    return done.returncode == 0


def _verdict(
    samples: Sequence[sample_files.Sample],
    outcomes: Sequence[Outcome],
    paths: DemoPaths,
    jobs: dict[str, ResultRow],
    stopped: Sequence[Stopped],
    commands_ok: bool,
    say: _Say,
) -> int:
    surprises = [f"{o.name}: {o.problem}" for o in outcomes if not o.ok]
    done = sum(1 for row in jobs.values() if row.state is JobState.DONE)
    say(
        f"\n{done} done, {len(jobs) - done} failed"
        + ("" if surprises else ": each file ended as expected (the failed ones are not videos)")
    )
    motions = [sample for sample in samples if sample.motion]
    right = sum(1 for sample in motions if _top_label(jobs, paths, sample) == sample.motion)
    say(f"synthetic clips tagged with the motion they show: {right} of {len(motions)}")
    if surprises:
        say.error("unexpected results:\n" + "\n".join(f"    {line}" for line in surprises))
    unclean = [s for s in stopped if not s.clean]
    if unclean:
        say.error(f"{', '.join(s.name for s in unclean)} did not stop cleanly; see {paths.logs}/")
    if surprises or unclean or not commands_ok:
        return EXIT_FAILED
    say(f"logs: {paths.logs}/  report: {paths.report}/index.html  database: {paths.database}")
    first = paths.inbox / samples[0].name
    say(f"next: python -m storage --database-url {paths.database_url} show {first}")
    return 0


def _top_label(
    jobs: dict[str, ResultRow], paths: DemoPaths, sample: sample_files.Sample
) -> str | None:
    row = jobs.get(str(paths.inbox / sample.name))
    return row.top.label if row is not None and row.top is not None else None


class _Say:
    """Numbered steps and plain lines on ``out``; errors on stderr."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.tty = out.isatty()
        self._step = 0

    def __call__(self, text: str) -> None:
        print(text, file=self.out, flush=True)

    def step(self, text: str) -> None:
        self._step += 1
        self(f"\n[{self._step}] {text}")

    def error(self, text: str) -> None:
        self.out.flush()
        print(f"demo: error: {text}", file=sys.stderr, flush=True)
