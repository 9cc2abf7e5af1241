"""The daemon's lifecycle: start-up → supervised main loop → bounded shutdown, with sd_notify.

Signals only set the stop event (the CLI installs them); this module's main
loop does everything else. A crashed capture or inference worker is
restarted within a budget; a worker that cannot be restarted (a stuck
inference call, a dead alert stage, an exhausted budget) makes the daemon exit
non-zero so systemd restarts the whole process — the watchdog pings stop
as soon as frames or inference stop flowing, which covers the cases the
supervisor cannot see.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from monitor.config import Config, SupervisorConfig
from monitor.decide.policy import DecisionEvent
from monitor.errors import ModelError, StoreError, WebError
from monitor.metrics import Metrics
from monitor.model.onnx import OnnxClassifier
from monitor.notify.service import NotificationService
from monitor.service.pipeline import Pipeline
from monitor.service.sdnotify import Notifier, watchdog_interval_s
from monitor.store import ReviewStore
from monitor.web.app import LOOPBACK_HOSTS, WebServer, create_app

logger = logging.getLogger(__name__)

EXIT_CONFIG = 2

EXIT_GAVE_UP = 70


class Supervisor:
    """Restarts dead workers within a budget; says when the process should give up."""

    def __init__(
        self, pipeline: Pipeline, cfg: SupervisorConfig, clock: Callable[[], float] = time.monotonic
    ):
        self.pipeline, self.cfg, self.clock = pipeline, cfg, clock
        self._restarts: deque[float] = deque()
        self.gave_up: str | None = None

    def _budget_left(self) -> bool:
        now = self.clock()
        while self._restarts and now - self._restarts[0] > self.cfg.window_s:
            self._restarts.popleft()
        return len(self._restarts) < self.cfg.max_restarts

    def _restart(self, what: str, action: Callable[[], None]) -> None:
        if not self._budget_left():
            self.gave_up = f"{what} died and the restart budget ({self.cfg.max_restarts} per {self.cfg.window_s:.0f} s) is spent"
            return
        logger.error("%s died; restarting it", what)
        self._restarts.append(self.clock())
        action()

    def check(self) -> None:
        """One supervision pass; sets ``gave_up`` with a reason when the process should exit."""
        p = self.pipeline
        for cam_id, worker in list(p.captures.items()):
            if not worker.is_alive() and worker.status != "ended":
                self._restart(f"capture:{cam_id}", lambda c=cam_id: p.restart_capture(c))  # type: ignore[misc]
        if not p.inference.is_alive():
            self._restart("inference", p.restart_inference)
        elif self.clock() - p.inference.last_loop_mono > self.cfg.stuck_after_s:
            self.gave_up = f"inference has been stuck for over {self.cfg.stuck_after_s:.0f} s"
        if not p.alerts.is_alive():
            self.gave_up = "the alert stage died"

    def flowing(self) -> bool:
        """True while the watchdog may be fed: workers alive and frames being decided."""
        p = self.pipeline
        if self.gave_up or not (p.inference.is_alive() and p.alerts.is_alive()):
            return False
        if not any(w.status == "online" for w in p.captures.values()):
            return True  # nothing to process; a restart would not bring a camera back
        last = p.alerts.last_decision_mono
        started = p.started_mono or self.clock()
        return self.clock() - (last if last is not None else started) < self.cfg.stuck_after_s


def status_line(pipeline: Pipeline) -> str:
    statuses = [w.status for w in pipeline.captures.values()]
    online = statuses.count("online")
    return (
        f"{online}/{len(statuses)} cameras online; model {pipeline.classifier.meta.model_version}"
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
    except ModelError as exc:
        logger.error("refusing to start: %s", exc)
        return EXIT_CONFIG
    try:
        store = ReviewStore(cfg.store.path, retries=cfg.store.write_retries, metrics=metrics)
    except StoreError as exc:
        logger.error("refusing to start: %s (check store.path)", exc)
        return EXIT_CONFIG

    try:
        pipeline = Pipeline(cfg, classifier, store, metrics)
        notifications = _notifications(cfg, store, metrics, pipeline)
        web = _start_web(cfg, store, metrics, pipeline, notifications)
    except (ValueError, ModelError, OSError) as exc:
        logger.error("refusing to start: %s", exc)
        store.close()
        return EXIT_CONFIG
    pipeline.start()
    if notifications.enabled:
        notifications.start()
    code = _main_loop(cfg, pipeline, stop, notifier)
    notifier.send(STOPPING=1, STATUS="stopping")
    stuck = pipeline.stop(cfg.supervisor.drain_timeout_s)
    # After the pipeline (its last alerts are stored, its cameras say offline),
    # before the store closes (every attempt is recorded there).
    notifications.stop()
    if not notifications.join(timeout=cfg.supervisor.drain_timeout_s):
        logger.warning("thread notify did not stop within %.1f s", cfg.supervisor.drain_timeout_s)
        stuck.append("notify")
    if web is not None:
        web.stop(cfg.supervisor.drain_timeout_s)
    store.close()
    notifier.close()
    logger.info("stopped%s", f" (threads still alive: {', '.join(stuck)})" if stuck else "")
    return code


def _start_web(
    cfg: Config,
    store: ReviewStore,
    metrics: Metrics,
    pipeline: Pipeline,
    notifications: NotificationService,
) -> WebServer | None:
    """Serve the review pages and the API; raises ValueError/OSError when it cannot."""
    if not cfg.web.enabled:
        return None

    def on_change(kind: str, payload: dict[str, Any]) -> None:
        # A mode change applies at once (not at the next refresh); a confirmation
        # in review mode may be due for notification now.
        if kind == "mode":
            pipeline.modes.refresh()
        elif kind == "verdict":
            notifications.wake()

    def health() -> dict[str, Any]:
        report = pipeline.health()
        if notifications.enabled:
            alive = notifications.is_alive()
            report["workers"]["notify"] = alive
            report["ok"] = report["ok"] and alive
        return report

    app = create_app(
        store,
        metrics,
        health,
        auth=cfg.web.auth,
        modes=pipeline.modes,
        labels=pipeline.classifier.meta.labels,
        on_change=on_change,
        allowed_hosts=None if cfg.web.auth.enabled else LOOPBACK_HOSTS,
    )
    web = WebServer(app, cfg.web.host, cfg.web.port)
    try:
        web.start()
    except (OSError, WebError) as exc:
        raise OSError(f"cannot listen on {cfg.web.host}:{cfg.web.port} ({exc})") from exc
    logger.info("web listening on http://%s:%d", cfg.web.host, web.port)
    return web


def _notifications(
    cfg: Config, store: ReviewStore, metrics: Metrics, pipeline: Pipeline
) -> NotificationService:
    """The notify thread (MQTT, webhook), woken as soon as the alert stage has stored a new alert."""
    service = NotificationService(
        cfg.notifications,
        store,
        metrics,
        camera_status=lambda: {cam: w.status for cam, w in pipeline.captures.items()},
        started_at=time.time(),
    )

    def wake_on_start(ev: DecisionEvent, event_id: int | None) -> None:
        if ev.kind == "start":  # updates and ends are not notified: no need to look
            service.wake()

    pipeline.alerts.observers.append(wake_on_start)
    return service


def _main_loop(cfg: Config, pipeline: Pipeline, stop: threading.Event, notifier: Notifier) -> int:
    supervisor = Supervisor(pipeline, cfg.supervisor)
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
        if supervisor.flowing():
            notifier.send(WATCHDOG=1)
        line = status_line(pipeline)
        if line != last_status:
            notifier.send(STATUS=line)
            last_status = line
    return 0
