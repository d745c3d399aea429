"""``docsort demo``: the whole flow on one machine, on embedded defaults.

Synthetic pages -> ``docsort train`` (small-cnn) -> activate -> a broker (the local Redis, a private
``redis-server``, or the embedded mode) -> ``docsort worker``, ``docsort watch`` and ``docsort serve`` ->
a demo operator -> fresh pages dropped into the inbox -> a table of outcomes -> the review page's
address; Ctrl-C (or ``--once``, after the table) stops every process it started.

Everything lives under one work folder: ``data/`` (the ``DOCSORT_DATA_DIR``: SQLite database, models,
inbox, outbox, archive, error and review areas), ``training/`` (the labelled pages), ``drop/`` and
``inbox-labels.csv`` (the fresh pages and their true classes), ``logs/`` (one file per process).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import sys
import threading
import time
import uuid
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from docsort.demo_batches import (
    BATCH_FOLDER,
    Expected,
    all_documents,
    document_table,
    drop_documents,
    write_routes,
)
from docsort.demo_embedded import EMBEDDED_BROKER_URL, EmbeddedBroker
from docsort.demo_procs import (
    DemoError,
    forget_queue,
    free_port,
    http_ok,
    port_free,
    redis_answers,
    start_private_redis,
)
from docsort.demo_report import (
    DOCUMENT,
    Outcomes,
    all_pages,
    calibrated_review_rate,
    collect,
    outcome_table,
    read_labels,
    review_threshold,
)
from docsort.demo_setup import DemoOptions, DemoPaths, FileLogging, prepare_workdir
from docsort.procs import Child, docsort_command
from docsort.synth import SynthOptions, generate
from review.security import create_operator
from schema import db
from schema.logs import get_logger
from schema.manifest import ModelManifest
from worker.registry import activate, scan_models_dir

log = get_logger(__name__)
MODEL_NAME = "small-cnn"
OPERATOR = "demo"
AREAS = ("models", "inbox", "processing", "outbox", "error", "archive", "review")
STOP_ORDER = ("watch", "worker", "web", "train", "redis")
STEPS = 8
SHOWS_REVIEW = (0.10, 0.60)  # trained thresholds kept when they review this share of validation pages
DEFAULT_REVIEW_FRACTION = 0.2


class Demo:
    def __init__(self, opts: DemoOptions, console: Console | None = None) -> None:
        self.opts = opts
        self.console = console or Console(highlight=False, soft_wrap=True)
        self.paths = DemoPaths(opts.workdir.resolve())
        self.queue = f"docsort-demo-{uuid.uuid4().hex[:10]}"
        self.secret = secrets.token_urlsafe(32)
        self.children: dict[str, Child] = {}
        self.expected: list[Expected] = []
        self.embedded: EmbeddedBroker | None = None  # in the embedded mode
        self.broker_url = ""
        self.shared_redis = False
        self.confidence: float | None = None
        self.port = opts.port
        self.password = secrets.token_urlsafe(9)

    # --- output -----------------------------------------------------------------------------------
    def step(self, n: int, text: str) -> None:
        self.console.print(f"[bold][{n}/{STEPS}][/bold] {text}")

    def note(self, text: str) -> None:
        self.console.print(f"      {text}")

    def progress(self) -> Progress:
        columns = (
            TextColumn("      {task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
        )
        return Progress(*columns, console=self.console)

    # --- environment -----------------------------------------------------------------------------
    def env(self) -> dict[str, str]:
        """The environment of every docsort process of the demo: the demo's settings, nothing inherited."""
        keep = {
            k: v for k, v in os.environ.items() if not k.startswith("DOCSORT_") or k == "DOCSORT_TF_THREADS"
        }
        values: dict[str, object] = {
            "ENVIRONMENT": "local",
            "DATA_DIR": self.paths.data,
            "DATABASE_URL": self.paths.database_url,
            **{f"{name.upper()}_DIR": self.paths.area(name) for name in AREAS},
            "BROKER_URL": self.broker_url or "redis://127.0.0.1:6379/0",
            "QUEUE": self.queue,
            "SECRET_KEY": self.secret,
            "LOG_FORMAT": "json",
            "LOG_LEVEL": "INFO",
            "CONCURRENCY": 1,
            "WATCH_SETTLE_SECONDS": 0.5,
            "WATCH_RESCAN_SECONDS": 5,
            "ROUTES_FILE": self.paths.workdir / "routes.yaml",
        }
        if self.confidence is not None:
            values["CONFIDENCE"] = f"{self.confidence:.6f}"
        keep.update({f"DOCSORT_{k}": str(v) for k, v in values.items()})
        keep["PYTHONUNBUFFERED"] = "1"
        return keep

    def spawn(self, name: str, *args: str) -> Child:
        child = Child(
            name, docsort_command(*args), self.env(), self.paths.workdir, self.paths.logs / f"{name}.log"
        )
        self.children[name] = child
        return child

    # --- the steps ---------------------------------------------------------------------------------
    def make_training_pages(self) -> None:
        o = self.opts
        self.step(1, f"synthetic scans for training: {o.per_class} per class ({', '.join(o.classes)})")
        options = SynthOptions(per_class=o.per_class, size=o.page_size, seed=o.seed, classes=o.classes)
        summary = generate(self.paths.training, options, progress=sys.stderr.isatty())
        self.note(f"{len(summary.files)} pages in {self.paths.training}")

    def train(self) -> Path:
        o = self.opts
        self.step(
            2, f"docsort train: small-cnn, {o.image_size} px, up to {o.epochs} epochs (log: logs/train.log)"
        )
        models = self.paths.area("models")
        args = ["train", str(self.paths.training), "--models-dir", str(models), "--name", MODEL_NAME]
        args += ["--backbone", "small-cnn", "--image-size", str(o.image_size), "--epochs", str(o.epochs)]
        args += ["--batch-size", str(o.batch_size), "--seed", str(o.seed), "--quiet"]
        started = time.monotonic()
        child = self.spawn("train", *args)
        with self.progress() as bar:
            task = bar.add_task("epochs", total=o.epochs)
            while child.alive():
                bar.update(task, completed=child.log().count('"epoch_done"'))
                time.sleep(0.5)
            bar.update(task, completed=o.epochs)
        del self.children["train"]
        if child.proc.returncode != 0:
            raise child.failure("failed")
        return self._trained_version(models, time.monotonic() - started)

    def _trained_version(self, models: Path, seconds: float) -> Path:

        found, problems = scan_models_dir(models)
        if not found:
            raise DemoError(f"docsort train wrote no model version under {models}: {problems}")
        item = max(found, key=lambda f: f.manifest.version)
        m: ModelManifest = item.manifest
        self.note(
            f"{m.name}/{m.version}: validation accuracy {m.metrics.get('accuracy', float('nan')):.3f} on "
            f"{m.metrics.get('n', '?')} pages, {seconds:.0f} s; exported to {item.path / m.onnx_file}"
        )
        return Path(item.path)

    def activate(self, version_dir: Path) -> None:

        sessions = db.make_sessionmaker(db.make_engine(self.paths.database_url))
        with db.session_scope(sessions) as session:
            row = activate(session, self.paths.area("models"), MODEL_NAME, version_dir.name)
        self.step(
            3, f"activated {row.name}/{row.version} (as `docsort models activate {row.name} {row.version}`)"
        )
        calibrated = calibrated_review_rate(version_dir)
        if calibrated is not None:
            self.note(
                f"its own thresholds (for {100 * calibrated[0]:.1f}% accuracy of auto pages) send "
                f"{100 * calibrated[1]:.0f}% of its validation pages to review"
            )
        fraction = self.opts.review_fraction
        if fraction is None:
            if calibrated is not None and SHOWS_REVIEW[0] <= calibrated[1] <= SHOWS_REVIEW[1]:
                self.note("the demo serves it with those thresholds")
                return
            fraction = DEFAULT_REVIEW_FRACTION
        threshold, n = review_threshold(version_dir, fraction)
        self.confidence = threshold
        self.note(
            f"the demo serves it with DOCSORT_CONFIDENCE={threshold:.3f} instead: the lowest "
            f"{100 * fraction:.0f}% of its {n} validation pages fall below that, so the review queue "
            "has pages to show"
        )

    def choose_broker(self) -> None:
        url = self.opts.broker_url
        if redis_answers(url):
            self.broker_url, self.shared_redis = url, True
            self.step(4, f"broker: the Redis at {url} answers; queue {self.queue} (removed at the end)")
            return
        started = None
        if self.opts.start_redis:
            started = start_private_redis(
                self.paths.workdir / "redis", self.env(), self.paths.logs / "redis.log"
            )
        if started is not None:
            self.children["redis"], self.broker_url = started
            self.step(4, f"broker: no Redis at {url}; started a private redis-server at {self.broker_url}")
            return

        self.broker_url = EMBEDDED_BROKER_URL
        why = "--no-start-redis" if not self.opts.start_redis else "redis-server is not installed"
        self.step(4, f"broker: no Redis answers at {url} and none was started ({why}): EMBEDDED MODE")
        self.note("the watcher and the worker's task code (docsort.classify.v1) run inside this process,")
        self.note("joined by an in-process queue; the jobs API (POST /v1/jobs) needs Redis in this mode")

    def start_services(self) -> None:
        self.step(5, "starting docsort worker, docsort watch and docsort serve (logs: logs/*.log)")
        if not port_free(self.opts.host, self.port):
            self.port = free_port(self.opts.host)
            self.note(f"port {self.opts.port} is taken: the web application uses {self.port}")
        if self.embedded is None and self.broker_url.startswith("memory://"):
            self._start_embedded()
        else:
            worker = self.spawn("worker", "worker", "--concurrency", "1", "--hostname", f"{self.queue}@%h")
            watch = self.spawn("watch", "watch")
            worker.wait_for_log('"worker.ready"', timeout=180)
            watch.wait_for_log('"watching"', timeout=60)
            self.note(f"worker pid {worker.pid} on queue {self.queue}; watcher pid {watch.pid}")
        web = self.spawn("web", "serve", "--host", self.opts.host, "--port", str(self.port))
        web.wait_until(lambda: http_ok(f"{self.address}login"), 90, "serving /login")
        self.note(f"web pid {web.pid} at {self.address}")

    def _start_embedded(self) -> None:

        os.environ.update({k: v for k, v in self.env().items() if k.startswith("DOCSORT_")})
        self.embedded = EmbeddedBroker()
        self.embedded.start()
        self.note(
            f"embedded worker and watcher: threads of this process (pid {os.getpid()}), log: logs/demo.log"
        )

    @property
    def address(self) -> str:
        host = "127.0.0.1" if self.opts.host in ("0.0.0.0", "::") else self.opts.host
        return f"http://{host}:{self.port}/"

    def create_operator(self) -> None:

        sessions = db.make_sessionmaker(db.make_engine(self.paths.database_url))
        with sessions() as session:
            create_operator(session, OPERATOR, self.password, replace=True)
        self.step(
            6,
            f"operator account (as `docsort operator create {OPERATOR}`): "
            f"login {OPERATOR!r}, password {self.password!r}",
        )

    def drop_pages(self) -> dict[str, str]:
        o = self.opts
        self.step(7, f"fresh scans into the inbox: {o.inbox_per_class} per class + {o.broken} broken files")
        options = SynthOptions(
            per_class=o.inbox_per_class, size=o.page_size, seed=o.seed + 1, classes=o.classes, fmt="mixed",
            unlabelled=True, broken=o.broken, labels_csv=self.paths.labels,
        )  # fmt: skip
        generate(self.paths.drop, options, progress=sys.stderr.isatty())
        inbox = self.paths.area("inbox")
        inbox.mkdir(parents=True, exist_ok=True)
        labels = read_labels(self.paths.labels)
        self.expected = drop_documents(self.paths.drop, o.seed + 2, o.page_size, o.classes)
        for name in labels:
            os.replace(self.paths.drop / name, inbox / name)
        for path in sorted(self.paths.drop.rglob("*.pdf")):
            (inbox / path.relative_to(self.paths.drop)).parent.mkdir(parents=True, exist_ok=True)
            os.replace(path, inbox / path.relative_to(self.paths.drop))
            labels[path.name] = DOCUMENT
        self.note(f"{len(labels)} files moved into {inbox} (true classes kept in {self.paths.labels.name})")
        self.note(
            f"among them a stack of {sum(1 for e in self.expected if e.file.startswith('stack'))} documents "
            f"in {BATCH_FOLDER}/stack-001.pdf (its folder's rule: class) and a 3-page contract-001.pdf"
        )
        return labels

    def wait_for_outcomes(self, labels: dict[str, str]) -> Outcomes:
        sessions = db.make_sessionmaker(db.make_engine(self.paths.database_url))
        deadline = time.monotonic() + self.opts.timeout
        with self.progress() as bar:
            task = bar.add_task("files with an outcome", total=len(labels))
            while True:
                with sessions() as session:
                    outcomes = collect(all_pages(session), labels)
                bar.update(task, completed=len(outcomes.files_done))
                if len(outcomes.files_done) >= len(labels):
                    return outcomes
                self._check_alive()
                if time.monotonic() > deadline:
                    raise DemoError(
                        f"only {len(outcomes.files_done)} of {len(labels)} files have an outcome after "
                        f"{self.opts.timeout:.0f} s; see the logs in {self.paths.logs}"
                    )
                time.sleep(0.5)

    def _check_alive(self) -> None:
        for child in self.children.values():
            if not child.alive():
                raise child.failure("stopped unexpectedly")
        if self.embedded is not None and not all(t.is_alive() for t in self.embedded.threads):
            raise DemoError(f"an embedded thread stopped; see {self.paths.logs / 'demo.log'}")

    def report(self, outcomes: Outcomes) -> None:
        self.step(8, "outcomes")
        self.console.print(outcome_table(outcomes))
        for name, reason in outcomes.reasons:
            self.note(f"failed: {name}: {reason}")
        kinds = outcomes.kinds
        self.console.print(
            f"pages: {kinds['auto']} auto (copied to {self.paths.area('outbox')}/<class>/<YYYY-MM>/), "
            f"{kinds['review']} review, {kinds['failed']} failed (files in {self.paths.area('error')})"
        )
        with db.make_sessionmaker(db.make_engine(self.paths.database_url))() as session:
            self.console.print(document_table(all_documents(session), self.expected))
        self.console.print(f"review page: {self.address}  (login {OPERATOR!r}, password {self.password!r})")

    def wait_for_ctrl_c(self) -> None:
        self.console.print(
            "running: drop more files into the inbox to classify them; Ctrl-C stops everything"
        )
        while True:
            self._check_alive()
            time.sleep(1.0)

    # --- stopping ----------------------------------------------------------------------------------
    def stop(self) -> None:
        """Stop every process and thread the demo started, in order; leave no Redis keys of its own."""
        stopped: list[str] = []
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut the clean-up short
        if self.embedded is not None:
            self.embedded.stop()
            stopped.append("embedded worker and watcher")
        for name in STOP_ORDER:
            child = self.children.pop(name, None)
            if child is not None:
                child.stop(grace=30 if name == "worker" else 10)
                stopped.append(f"{name} (pid {child.pid})")
        if self.shared_redis:
            forget_queue(self.broker_url, self.queue)
        with contextlib.suppress(OSError):
            self.paths.pid_file.unlink()
        if stopped:
            self.console.print(f"stopped: {', '.join(stopped)}; logs in {self.paths.logs}")

    # --- the whole run -----------------------------------------------------------------------------
    def run(self) -> Outcomes:
        prepare_workdir(self.paths)
        self.console.print(f"docsort demo in {self.paths.workdir} (logs: {self.paths.logs})")
        with FileLogging(self.paths.logs / "demo.log"):
            try:
                db.upgrade(self.paths.database_url)
                write_routes(self.paths.workdir / "routes.yaml")
                self.make_training_pages()
                version_dir = self.train()
                self.activate(version_dir)
                self.choose_broker()
                self.start_services()
                self.create_operator()
                outcomes = self.wait_for_outcomes(self.drop_pages())
                self.report(outcomes)
                if not self.opts.once:
                    self.wait_for_ctrl_c()
                return outcomes
            finally:
                self.stop()


def run_demo(opts: DemoOptions, console: Console | None = None) -> Outcomes:
    """Run the demo; with ``opts.once`` return after the table, else run until interrupted."""
    return Demo(opts, console).run()
