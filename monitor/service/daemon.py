"""The daemon's lifecycle: start-up → supervised main loop → one bounded shutdown, with sd_notify.

Signals only set the stop event (the CLI installs them); this module's main
loop does everything else. Every thread — captures, inference, alerts,
notify, web — is registered with the supervisor: a crashed or stuck one is
restarted from its factory within a budget; past it (or for a worker that
cannot be restarted) the daemon exits non-zero so systemd restarts the whole
process. The watchdog pings stop as soon as frames or inference stop
flowing, which covers what the supervisor cannot see.

Start-up problems a user must fix (config, model, store, address) are
``MonitorError``s: one line, exit 2, nothing half-started left behind.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from monitor.config import Config
from monitor.decide.policy import DecisionEvent
from monitor.errors import EXIT_GAVE_UP, EXIT_USAGE, MonitorError, StoreError
from monitor.metrics import Metrics
from monitor.model.onnx import OnnxClassifier
from monitor.notify.service import NotificationService
from monitor.records import HealthReport
from monitor.service.pipeline import Pipeline
from monitor.service.sdnotify import Notifier, watchdog_interval_s
from monitor.service.supervisor import Supervised, Supervisor
from monitor.store import ReviewStore
from monitor.store.retention import RetentionWorker
from monitor.web.app import LOOPBACK_HOSTS, WebServer, create_app
from monitor.worker import Deadline

logger = logging.getLogger(__name__)

EXIT_CONFIG = EXIT_USAGE


def flowing(pipeline: Pipeline, supervisor: Supervisor, clock: Callable[[], float]) -> bool:
    """True while the watchdog may be fed: workers alive and frames being decided."""
    p = pipeline
    if supervisor.gave_up or not (p.inference.is_alive() and p.alerts.is_alive()):
        return False
    if not any(w.status == "online" for w in p.captures.values()):
        return True  # nothing to process; a restart would not bring a camera back
    last = p.alerts.last_decision_mono
    started = p.started_mono or clock()
    return clock() - (last if last is not None else started) < supervisor.cfg.stuck_after_s


def status_line(pipeline: Pipeline) -> str:
    statuses = [w.status for w in pipeline.captures.values()]
    online = statuses.count("online")
    return (
        f"{online}/{len(statuses)} cameras online; model {pipeline.classifier.meta.model_version}"
    )


class Services:
    """The daemon's threads beside the data path — notify and web — each rebuilt from config when it fails.

    Args:
        cfg: the configuration.
        store: the review store both use.
        metrics: the daemon's metrics.
        pipeline: the data path (camera statuses, modes, labels, health).
    """

    def __init__(self, cfg: Config, store: ReviewStore, metrics: Metrics, pipeline: Pipeline):
        self.cfg, self.store, self.metrics, self.pipeline = cfg, store, metrics, pipeline
        self.started_at = time.time()
        self.notifications = self._new_notifications()
        self.web: WebServer | None = None
        self._app: Any = None
        self.retention = self._new_retention()
        pipeline.alerts.observers.append(self._wake_on_start)
        # The spill is the commit point: an active alert it holds goes out now.
        pipeline.alerts.on_spilled.append(lambda ev: self.notifications.send_spilled(ev))

    def _new_notifications(self) -> NotificationService:
        return NotificationService(
            self.cfg.notifications,
            self.store,
            self.metrics,
            lease_s=self.cfg.notifications.claim_lease_s,
            camera_status=lambda: {cam: w.status for cam, w in self.pipeline.captures.items()},
            sensors={c.id: tuple(c.decision.alert_labels) for c in self.cfg.cameras if c.enabled},
            started_at=self.started_at,
        )

    def _new_retention(self) -> RetentionWorker:
        return RetentionWorker(self.store, self.cfg.retention, self.metrics)

    def restart_retention(self) -> None:
        self.retention = self._new_retention()
        self.retention.start()

    def _wake_on_start(self, ev: DecisionEvent, event_id: int | None) -> None:
        if ev.kind == "start":  # updates and ends are not notified: no need to look
            self.notifications.wake()

    def restart_notifications(self) -> None:
        self.notifications = self._new_notifications()
        self.notifications.start()

    def _on_change(self, kind: str, payload: dict[str, Any]) -> None:
        # A mode change applies at once (not at the next refresh); a confirmation
        # in review mode may be due for notification now.
        if kind == "mode":
            self.pipeline.modes.refresh()
        elif kind == "verdict":
            self.notifications.wake()

    def health(self) -> HealthReport:
        report = self.pipeline.health()
        extra = {}
        if self.notifications.enabled:
            extra["notify"] = self.notifications.is_alive()
        if self.web is not None:
            extra["web"] = self.web.is_alive()
        if self.cfg.retention.enabled:
            extra["retention"] = self.retention.is_alive()
        report["workers"].update(extra)
        report["problems"] += [
            f"worker {name} is not running" for name, up in extra.items() if not up
        ]
        report["ok"] = not report["problems"]
        report["status"] = "ok" if report["ok"] else "degraded"
        return report

    def start_web(self) -> None:
        """Serve the review pages and the API.

        Raises:
            WebError: when the address cannot be bound.
        """
        if not self.cfg.web.enabled:
            return
        if self._app is None:
            self._app = create_app(
                self.store,
                self.metrics,
                self.health,
                auth=self.cfg.web.auth,
                modes=self.pipeline.modes,
                labels=self.pipeline.classifier.meta.labels,
                on_change=self._on_change,
                allowed_hosts=None if self.cfg.web.auth.enabled else LOOPBACK_HOSTS,
                frames=self.pipeline.latest,
                trusted_proxies=self.cfg.web.trusted_proxies,
            )
        # A restart binds the port the first server got (port 0 in tests).
        port = self.cfg.web.port if self.web is None else self.web.port
        web = WebServer(self._app, self.cfg.web.host, port)
        web.start()
        self.web = web

    def start(self) -> None:
        if self.notifications.enabled:
            self.notifications.start()
        if self.cfg.retention.enabled:
            self.retention.start()

    def supervised(self) -> list[Supervised]:
        items = []
        stuck_s = self.cfg.supervisor.stuck_after_s
        if self.notifications.enabled:
            items.append(
                Supervised(
                    "notify",
                    lambda: self.notifications,
                    self.restart_notifications,
                    stuck_after_s=stuck_s,
                )
            )
        if self.cfg.retention.enabled:
            items.append(
                Supervised(
                    "retention",
                    lambda: self.retention,
                    self.restart_retention,
                    stuck_after_s=None,  # one pass over a big store may take a while
                )
            )
        if self.web is not None:
            web = self.web
            # A stuck server still holds its listening socket, so a new one could
            # not bind the address: a stuck web thread makes the process give up.
            items.append(
                Supervised(
                    "web",
                    lambda: self.web or web,
                    self.start_web,
                    stuck_after_s=stuck_s,
                    restart_when_stuck=False,
                )
            )
        return items

    def stop(self, deadline: Deadline) -> list[str]:
        """After the pipeline (its last alerts are stored), before the store closes."""
        stuck = []
        self.notifications.stop()
        self.retention.stop()
        if not self.notifications.join(deadline.remaining(floor_s=0.5)):
            stuck.append("notify")
        if not self.retention.join(deadline.remaining(floor_s=0.5)):
            stuck.append("retention")
        if self.web is not None and not self.web.stop(deadline.remaining(floor_s=0.5)):
            stuck.append("web")
        return stuck


def open_configured_store(cfg: Config, metrics: Metrics) -> ReviewStore:
    """The store the config names: ``store.url`` (default: the SQLite file ``store.path``).

    Raises:
        StoreError: one line naming the store (password redacted): unreachable,
            refused, no schema or an old one on a server (naming
            ``bearwatch db upgrade``), or upgraded by a newer bearwatch.
    """
    return ReviewStore(
        cfg.store.url or cfg.store.path,
        site=cfg.site,
        local_path=cfg.store.path,
        retries=cfg.store.write_retries,
        metrics=metrics,
        score_log_days=cfg.store.score_log_days,
        min_free_mb=cfg.retention.min_free_mb if cfg.retention.enabled else 0.0,
    )


def run_daemon(cfg: Config, stop: threading.Event, notifier: Notifier | None = None) -> int:
    """Run until ``stop`` is set; returns the process exit code.

    Args:
        cfg: the validated configuration.
        stop: set by the signal handlers (or a test) to shut down.
        notifier: the sd_notify channel (defaults to $NOTIFY_SOCKET).
    """
    notifier = notifier or Notifier()
    metrics = Metrics()
    try:
        classifier = OnnxClassifier(
            cfg.model.path,
            cfg.model.providers,
            cfg.model.threads,
            warmup_batch=cfg.batching.max_batch,
        )
    except MonitorError as exc:
        logger.error("refusing to start: %s", exc)
        return exc.exit_code
    try:
        store = open_configured_store(cfg, metrics)
    except StoreError as exc:
        logger.error(
            "refusing to start: %s (check %s)", exc, "store.url" if cfg.store.url else "store.path"
        )
        return exc.exit_code
    try:
        # No alert stage runs yet: every event still open was left so by a crash.
        store.close_interrupted_events()
    except StoreError as exc:
        logger.error("events left open by a crash stay open until the next start: %s", exc)
    try:
        pipeline = Pipeline(cfg, classifier, store, metrics)
        services = Services(cfg, store, metrics, pipeline)
        services.start_web()
    except MonitorError as exc:
        logger.error("refusing to start: %s", exc)
        store.close()
        return exc.exit_code
    pipeline.start()
    services.start()
    supervisor = Supervisor(cfg.supervisor, metrics)
    for item in pipeline.supervised() + services.supervised():
        supervisor.register(item)
    code = supervise(pipeline, supervisor, stop, notifier)
    notifier.send(STOPPING=1, STATUS="stopping")
    deadline = Deadline(cfg.supervisor.drain_timeout_s)
    stuck = pipeline.stop(deadline)
    stuck += services.stop(deadline)
    store.close()
    notifier.close()
    logger.info("stopped%s", f" (threads still alive: {', '.join(stuck)})" if stuck else "")
    return code


def supervise(
    pipeline: Pipeline, supervisor: Supervisor, stop: threading.Event, notifier: Notifier
) -> int:
    notifier.send(READY=1, STATUS=status_line(pipeline))
    tick = min(1.0, watchdog_interval_s() or 1.0)
    last_status = ""
    while not stop.wait(tick):
        supervisor.check()
        if supervisor.gave_up:
            logger.error(
                "giving up: %s; exiting so systemd restarts the service", supervisor.gave_up
            )
            return EXIT_GAVE_UP
        if flowing(pipeline, supervisor, time.monotonic):
            notifier.send(WATCHDOG=1)
        line = status_line(pipeline)
        if line != last_status:
            notifier.send(STATUS=line)
            last_status = line
    return 0
