"""Every thread is supervised alike: a crashed notify thread and a stuck web thread are restarted, then the budget runs out."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from monitor.config import NotificationsConfig, SupervisorConfig
from monitor.metrics import Metrics
from monitor.notify.service import NotificationService
from monitor.service.supervisor import Supervised, Supervisor
from monitor.store import ReviewStore
from monitor.web.app import LOOPBACK_HOSTS, WebServer, create_app
from monitor.worker import Worker
from tests.brokers import MosquittoBroker


def wait_until(cond: Callable[[], bool], timeout: float = 10.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        threading.Event().wait(0.02)
    return bool(cond())


class FailingStatus:
    """Camera statuses for the notify thread; ``crash()`` makes the next read kill the thread.

    SystemExit, not an Exception: the notify loop survives every ``Exception``
    by design, so only something it does not catch can take its thread down.
    """

    def __init__(self) -> None:
        self._crash = threading.Event()

    def crash(self) -> None:
        self._crash.set()

    def __call__(self) -> dict[str, str]:
        if self._crash.is_set():
            self._crash.clear()
            raise SystemExit("simulated crash of the notify thread")
        return {"gate": "online"}


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[MosquittoBroker]:
    with MosquittoBroker(tmp_path) as b:
        yield b


@pytest.fixture
def store(tmp_path: Path) -> Iterator[ReviewStore]:
    s = ReviewStore(tmp_path / "s.db")
    yield s
    s.close()


class Holder:
    """What a daemon does for notify: keep the live service, rebuild it from config on restart."""

    def __init__(self, make: Callable[[], NotificationService]) -> None:
        self._make = make
        self.service = make()
        self.service.start()

    def restart(self) -> None:
        self.service = self._make()
        self.service.start()


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_a_crashed_notify_thread_is_restarted_then_the_process_gives_up(
    broker: MosquittoBroker, store: ReviewStore
) -> None:
    status = FailingStatus()
    cfg = NotificationsConfig.model_validate({"mqtt": {"host": "127.0.0.1", "port": broker.port}})
    metrics = Metrics()
    holder = Holder(
        lambda: NotificationService(cfg, store, metrics, camera_status=status, poll_s=0.05)
    )
    sup = Supervisor(SupervisorConfig(max_restarts=1, window_s=300), metrics)
    sup.register(Supervised("notify", lambda: holder.service, holder.restart, stuck_after_s=30))
    try:
        first = holder.service
        assert wait_until(lambda: first.is_alive())
        sup.check()
        assert sup.gave_up is None  # healthy: nothing to do

        status.crash()
        assert wait_until(lambda: first.died())
        assert isinstance(first.failure, SystemExit)
        sup.check()
        assert sup.gave_up is None
        assert holder.service is not first and wait_until(lambda: holder.service.is_alive())
        assert metrics.counter_totals("bearwatch_worker_restarts", by="worker") == {"notify": 1.0}

        status.crash()
        assert wait_until(lambda: holder.service.died())
        sup.check()
        assert sup.gave_up is not None and "notify died" in sup.gave_up
        assert "restart budget" in sup.gave_up
    finally:
        holder.service.stop()
        holder.service.join(5.0)


def test_a_stuck_web_thread_makes_the_process_give_up(store: ReviewStore) -> None:
    """A handler that blocks the event loop stops uvicorn's ticks: the web thread is stuck.

    A second server cannot take the address while the stuck one still holds its
    listening socket, so the supervisor gives up and systemd restarts the process.
    """
    app = create_app(store, Metrics(), lambda: {"ok": True}, allowed_hosts=LOOPBACK_HOSTS)
    release = threading.Event()

    @app.get("/block")
    async def block() -> dict[str, bool]:
        release.wait(30)
        await asyncio.sleep(0)
        return {"released": True}

    server = WebServer(app, "127.0.0.1", 0)
    server.start()
    base = f"http://127.0.0.1:{server.port}"
    restarts: list[int] = []
    sup = Supervisor(SupervisorConfig(max_restarts=3, window_s=300, stuck_after_s=2))
    sup.register(
        Supervised(
            "web",
            lambda: server,
            lambda: restarts.append(1),
            stuck_after_s=1.5,
            restart_when_stuck=False,
        )
    )
    blocker = threading.Thread(
        target=lambda: httpx.get(f"{base}/block", timeout=30), name="blocked-client"
    )
    try:
        assert httpx.get(f"{base}/healthz").status_code == 200
        sup.check()
        assert sup.gave_up is None
        blocker.start()
        assert wait_until(lambda: server.seconds_since_beat() > 1.5)
        sup.check()
        assert sup.gave_up is not None and "web has been stuck" in sup.gave_up
        assert restarts == []
    finally:
        release.set()
        server.stop(2.0)
        if blocker.ident is not None:
            blocker.join(10)


class Dead(Worker):
    """A worker whose thread returns at once, as if it had crashed quietly."""

    def _run(self) -> None:
        return


def test_a_worker_without_a_factory_makes_the_process_give_up() -> None:
    worker = Dead("alerts")
    worker.start()
    assert wait_until(worker.died)
    sup = Supervisor(SupervisorConfig())
    sup.register(Supervised("alerts", lambda: worker))
    sup.check()
    assert sup.gave_up == "alerts died and cannot be restarted"


def test_the_shutdown_deadline_fits_under_the_units_stop_timeout() -> None:
    """systemd kills the process TimeoutStopSec after SIGTERM: the one drain deadline must end first.

    The capture joins, inference drain, alert drain, notify and web all share
    ``supervisor.drain_timeout_s``; the unit allows that plus the store close.
    """
    unit = (Path(__file__).resolve().parents[3] / "deploy" / "bearwatch.service").read_text()
    stop_s = float(
        next(line for line in unit.splitlines() if line.startswith("TimeoutStopSec=")).split("=")[1]
    )
    assert SupervisorConfig().drain_timeout_s + 5.0 <= stop_s
