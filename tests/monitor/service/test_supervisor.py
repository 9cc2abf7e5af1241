"""The supervisor: a crashed worker is restarted within the budget, then the daemon gives up; the watchdog stops."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from monitor.config import parse_config
from monitor.metrics import Metrics
from monitor.model.onnx import OnnxClassifier
from monitor.service.daemon import flowing
from monitor.service.pipeline import Pipeline
from monitor.service.supervisor import Supervisor
from monitor.store import ReviewStore
from tests.media import write_clip


class CrashingClassifier(OnnxClassifier):
    """The real model, except that the call after ``crash()`` kills its thread (not a plain Exception)."""

    def __init__(self, path: Path) -> None:
        self._crash = threading.Event()  # before super(): the warm-up already calls predict
        super().__init__(path)

    def crash(self) -> None:
        self._crash.set()

    def predict(self, batch: np.ndarray) -> np.ndarray:
        if self._crash.is_set():
            self._crash.clear()
            raise SystemExit("simulated crash of the inference thread")
        return super().predict(batch)


def wait_until(cond, timeout: float = 10.0) -> bool:  # type: ignore[no-untyped-def]
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        threading.Event().wait(0.02)
    return bool(cond())


@pytest.fixture
def pipeline(tmp_path: Path, color_model: Path) -> Iterator[tuple[Pipeline, CrashingClassifier]]:
    clip = write_clip(tmp_path / "bear.avi", ["empty"] * 10 + ["bear"] * 10)
    cfg = parse_config(
        {
            "model": {"path": str(color_model)},
            "cameras": [
                {"id": "trail", "source": str(clip), "loop": True, "pacing": "realtime", "fps": 10}
            ],
            "store": {"path": str(tmp_path / "s.db")},
            "supervisor": {"max_restarts": 1, "window_s": 300, "stuck_after_s": 2},
        }
    )
    clf = CrashingClassifier(color_model)
    store = ReviewStore(cfg.store.path)
    p = Pipeline(cfg, clf, store, Metrics())
    p.start()
    yield p, clf
    p.stop(2.0)
    store.close()


@pytest.mark.filterwarnings(
    "ignore::pytest.PytestUnhandledThreadExceptionWarning"
)  # the crash is the point
def test_a_crashed_inference_worker_is_restarted_then_the_budget_runs_out(
    pipeline: tuple[Pipeline, CrashingClassifier],
) -> None:
    p, clf = pipeline
    sup = Supervisor(p.cfg.supervisor, p.metrics)
    for item in p.supervised():
        sup.register(item)
    processed = lambda: p.metrics.counter_totals("bearwatch_frames_processed").get("", 0)  # noqa: E731
    assert wait_until(lambda: processed() > 5)
    assert flowing(p, sup, time.monotonic)

    clf.crash()
    assert wait_until(lambda: not p.inference.is_alive())
    assert not flowing(p, sup, time.monotonic)  # the watchdog is not fed while inference is down
    sup.check()
    assert sup.gave_up is None and p.inference.is_alive()
    before = processed()
    assert wait_until(lambda: processed() > before + 5)  # frames flow again
    assert p.metrics.counter_totals("bearwatch_worker_restarts", by="worker") == {"inference": 1.0}

    clf.crash()
    assert wait_until(lambda: not p.inference.is_alive())
    sup.check()
    assert sup.gave_up is not None and "restart budget" in sup.gave_up


def test_the_watchdog_starves_when_decisions_stop(
    pipeline: tuple[Pipeline, CrashingClassifier],
) -> None:
    p, _ = pipeline
    now = [time.monotonic()]
    sup = Supervisor(p.cfg.supervisor, clock=lambda: now[0])
    assert wait_until(lambda: p.alerts.last_decision_mono is not None)
    now[0] = time.monotonic()
    assert flowing(p, sup, lambda: now[0])
    now[0] += 10.0  # no decision for longer than stuck_after_s while the camera is online
    assert p.captures["trail"].status == "online"
    assert not flowing(p, sup, lambda: now[0])
