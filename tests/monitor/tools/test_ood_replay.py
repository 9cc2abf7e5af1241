"""Issue 10 end to end: replays of foreign and in-domain footage, held unfamiliar alerts, night from pixels."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np

from monitor.notify.service import event_payload
from monitor.report.build import ReportSettings, build_report
from monitor.store import ReviewStore
from tests.media import BEAR_BGR, night, photo_frames, scene, write_clip, write_frames

FPS = "2"


def replay(model: Path, *videos: Path, extra: tuple[str, ...] = ()) -> dict:  # type: ignore[type-arg]
    proc = subprocess.run(
        [sys.executable, "-m", "monitor", "replay", *map(str, videos), "--model", str(model), "--json",
         "--fps", FPS, *extra],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def with_bear(bgr: np.ndarray) -> np.ndarray:
    """A photograph with the colour model's "bear" (a red block) in it: a confident answer in a foreign scene."""
    out = bgr.copy()
    h, w = out.shape[:2]
    cv2.rectangle(out, (w // 4, h // 5), (w // 4 + w // 2, h - h // 5), BEAR_BGR, -1)
    return out


def foreign_clip(path: Path) -> Path:
    """60 s at 2 fps of real photographs (nothing the generator drew); a "bear" in them from 20 s on."""
    photos = photo_frames(120, seed=3)
    return write_frames(path, photos[:40] + [with_bear(f) for f in photos[40:]], fps=2)


def test_foreign_footage_flips_drift_and_marks_its_alerts_unfamiliar(
    ood_color_model: Path, tmp_path: Path
) -> None:
    db = tmp_path / "f.db"
    out = replay(ood_color_model, foreign_clip(tmp_path / "photos.avi"), extra=("--store", str(db)))
    drift = out["drift"]["photos"]
    assert drift["state"] == "shifted" and "unfamiliar scenes" in drift["flags"]
    alerts = [e for e in out["events"] if e["label"] == "bear"]
    assert alerts and all(e["unfamiliar"] is True and e["ood_score"] > 1.0 for e in alerts)
    store = ReviewStore(db)
    try:
        (change,) = store.list_events(kind="drift")
        stored = store.list_events(kind="alert")
    finally:
        store.close()
    first = min(e["start_at"] for e in stored) - alerts[0]["start"]  # the clip's first frame
    assert change["start_at"] - first <= 30.0  # left in_domain within 30 s at 2 fps
    assert all(e["unfamiliar"] and e["details"]["ood_reasons"] for e in stored)


def test_ten_minutes_in_domain_raise_no_drift_and_no_unfamiliar_alert(
    ood_color_model: Path, tmp_path: Path
) -> None:
    kinds = (["empty"] * 30 + ["bear"] * 10 + ["empty"] * 20 + ["person"] * 10) * 18
    clip = write_clip(tmp_path / "day.avi", kinds[:1200], fps=2)  # 10 minutes at 2 fps
    # The fixture's statistics come from whole frames and centre crops; motion
    # regions (auto's addition on this 5× larger frame) are a view they never saw.
    out = replay(ood_color_model, clip, extra=("--view", "full"))
    assert out["frames"] == 1200
    assert out["drift"]["day"]["state"] == "in_domain", out["drift"]
    bears = [e for e in out["events"] if e["label"] == "bear"]
    assert bears  # one event: every bear returns within the 60 s cooldown
    assert not any(e["unfamiliar"] for e in bears)
    assert all(e["ood_score"] is not None and e["ood_score"] <= 1.5 for e in bears)


def test_an_active_camera_holds_an_unfamiliar_alert_for_review(
    ood_color_model: Path, tmp_path: Path
) -> None:
    db = tmp_path / "a.db"
    clip = foreign_clip(tmp_path / "photos.avi")
    replay(ood_color_model, clip, extra=("--store", str(db), "--mode", "active"))
    store = ReviewStore(db)
    try:
        alerts = store.list_events(kind="alert")
        assert alerts and all(e["mode"] == "active" and e["held"] for e in alerts)
        due = store.due_notifications("webhook", since=0.0, max_attempts=5, retry_before=1e12)
        assert due == []  # nobody is paged about a scene the model does not know
        store.set_verdict(alerts[0]["id"], "confirmed", "ana")
        (sent,) = store.due_notifications("webhook", since=0.0, max_attempts=5, retry_before=1e12)
    finally:
        store.close()
    payload = event_payload(sent)
    assert (payload["type"], payload["unfamiliar"]) == ("confirmed", True)


def test_an_ir_night_clip_is_classed_night_at_any_hour(
    ood_color_model: Path, tmp_path: Path
) -> None:
    """The report runs on a day clock (night_hours 20:00-06:00 never matches noon UTC); the pixels say night.

    The colour model sees no colour at night, so the clip alerts on ``empty``.
    """
    frames = [night(scene("bear", seed=i, x_frac=0.1 + 0.01 * i), seed=i) for i in range(50)]
    db = tmp_path / "n.db"
    clip = write_frames(tmp_path / "ir.avi", frames, fps=2)
    out = replay(
        ood_color_model,
        clip,
        extra=("--store", str(db), "--alert-labels", "empty", "--view", "full"),
    )
    assert [e["label"] for e in out["events"]] == ["empty"]
    assert not out["events"][0]["unfamiliar"]  # IR night is in this model's domain
    store = ReviewStore(db)
    try:
        (alert,) = store.list_events(kind="alert")
        samples = store.list_audit_samples()
        stats = store.camera_stats()
    finally:
        store.close()
    assert stats and all(set(r["light"]) == {"night_ir"} for r in stats if r["frames"])
    # Pretend the clip was recorded at noon UTC, when the clock would call it day.
    noon = alert["start_at"] - alert["start_at"] % 86400 + 12 * 3600
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE events SET start_at = ? WHERE kind = 'alert'", (noon,))
    store = ReviewStore(db)
    try:
        report = build_report(store, ReportSettings(until=noon + 3600, since=noon - 3600))
    finally:
        store.close()
    assert alert["night_class"] == "night_ir"
    assert all(s["night_class"] == "night_ir" for s in samples)
    periods = report.summary["cameras"]["ir"]["periods"]
    assert (periods["night"]["alerts"], periods["day"]["alerts"]) == (1, 0)
