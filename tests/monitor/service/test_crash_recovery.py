"""Crash recovery: events a kill -9 left open are closed at the next start, at their last frame, marked interrupted."""

from __future__ import annotations

import signal
from pathlib import Path

from monitor.store import ReviewStore
from tests.media import write_clip
from tests.monitor.service.test_daemon import Daemon, config, wait_for
from tests.monitor.store.test_review_store import T0, event


def test_open_events_close_at_their_last_recorded_frame(tmp_path: Path) -> None:
    """Bug: after five kill -9s, 16 of 24 events had no end time, and no restart closed them."""
    store = ReviewStore(tmp_path / "events.db")
    try:
        open_id = store.add_event(event(start_at=T0, end_at=None))
        ended_id = store.add_event(event(start_at=T0 + 100, end_at=T0 + 110))
        assert open_id is not None and ended_id is not None
        assert store.update_event(open_id, peak_score=0.95, last_frame_at=T0 + 7.5)
        closed = store.close_interrupted_events()
        assert [(i, at) for i, _, at in closed] == [(open_id, T0 + 7.5)]
        got, ended = store.get_event(open_id), store.get_event(ended_id)
        assert got is not None and ended is not None
        assert (got["end_at"], got["interrupted"]) == (T0 + 7.5, True)
        assert (ended["end_at"], ended["interrupted"]) == (T0 + 110, False)
        assert store.close_interrupted_events() == []  # nothing left open
    finally:
        store.close()


def test_kill_9_then_restart_leaves_no_event_open(tmp_path: Path, color_model: Path) -> None:
    """Bug: events open at a kill -9 stayed open for ever; now the restart closes them, visible on the page and API."""
    clip = write_clip(tmp_path / "bear.avi", ["bear"] * 40, fps=10)
    cams = [{"id": "trail", "source": str(clip), "fps": 10, "loop": True,
             "decision": {"window": 3, "min_hits": 2, "end_after_s": 30.0}}]  # fmt: skip
    cfg = config(tmp_path, color_model, cams)
    (tmp_path / "first").mkdir()
    (tmp_path / "second").mkdir()
    first = Daemon(tmp_path / "first", cfg)
    try:
        assert first.read_notify("READY=1"), first.output()
        opened = wait_for(
            lambda: [e for e in first.get("/api/events").json()["events"] if e["end_at"] is None]
        )
        assert opened, first.output()
        first.proc.send_signal(signal.SIGKILL)
        first.proc.wait(10)
    finally:
        first.close()
    crashed = {e["id"] for e in opened}

    second = Daemon(tmp_path / "second", cfg)
    try:
        assert second.read_notify("READY=1"), second.output()
        for event_id in crashed:
            ev = second.get(f"/api/events/{event_id}").json()
            assert ev["end_at"] is not None and ev["interrupted"] is True, ev
            assert ev["end_at_epoch"] >= ev["start_at_epoch"]
        assert "badge interrupted" in second.get("/").text
        assert "marked interrupted" in second.output()
    finally:
        second.close()


def test_a_long_open_event_closes_near_its_last_frame_not_its_first_peak(tmp_path: Path) -> None:
    """Bug family: only a new peak wrote an event's row, so a bear present for minutes after its
    best frame was closed by a recovery at that frame; now the last frame is written every few seconds."""

    from monitor.alerts.stage import TOUCH_EVERY_S, AlertStage
    from monitor.config import CameraConfig, DecisionConfig
    from monitor.frames import Frame, Prediction
    from monitor.metrics import Metrics
    from monitor.store.writer import StoreWriter
    from tests.monitor.alerts.test_slow_store import wait_until
    from tests.monitor.alerts.test_stage_memory import BEAR, IMAGE, LABELS

    decision = DecisionConfig(threshold=0.7, window=3, min_hits=2, end_after_s=60.0)
    camera = CameraConfig(id="trail", source=str(tmp_path / "t.mp4"), decision=decision)
    metrics = Metrics()
    store = ReviewStore(tmp_path / "events.db", metrics=metrics)
    writer = StoreWriter(store, metrics)
    stage = AlertStage([camera], LABELS, "test-1", store, metrics, writer=writer)
    writer.start()
    stage.start()
    t0 = 1_750_000_000.0
    try:
        frames = [
            Prediction(Frame("trail", i, 0.0, t0 + i / 10.0, IMAGE, live=False), BEAR, 0.0)
            for i in range(200)  # 20 s of a bear whose score never rises: one peak, at the start
        ]
        stage.submit(frames)
        assert wait_until(lambda: stage.idle() and writer.idle())
        recovery = ReviewStore(tmp_path / "events.db")  # what the next start does after a crash
        try:
            ((_, _, end_at),) = recovery.close_interrupted_events()
        finally:
            recovery.close()
        assert end_at >= t0 + 19.9 - TOUCH_EVERY_S
    finally:
        stage.stop()
        stage.join(10.0)
        writer.stop()
        writer.join(10.0)
        store.close()
