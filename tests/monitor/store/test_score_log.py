"""The score log beside the store: compact per-camera day files, model changes, crash tails, retention."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from monitor.store.score_log import ScoreLog, ScoreRow

DAY = 86400.0
T0 = 1_750_000_000.0  # 2025-06-15 15:06 UTC


def row(at: float, bear: float, camera: str = "gate", n: int = 3) -> ScoreRow:
    scores = np.full(n, (1 - bear) / (n - 1), dtype=np.float32)
    scores[0] = bear
    return ScoreRow(camera, at, scores, ood=0.25, night=1)


def test_rows_read_back_exactly_and_cost_a_few_bytes(tmp_path: Path) -> None:
    log = ScoreLog(tmp_path / "s.db.scores", keep_days=0)
    log.set_model(["bear", "empty", "person"], "v1")
    for i in range(1000):
        log.append(row(T0 + i * 0.5, bear=(i % 10) / 10))
    (series,) = list(log.read("gate"))
    assert series.labels == ("bear", "empty", "person") and len(series) == 1000
    assert series.scores[7, 0] == np.float32(0.7)  # float32 exactly as the policy saw it
    assert series.at[3] == T0 + 1.5 and series.night[0] == 1
    assert np.allclose(series.ood, 0.25)
    size = sum(p.stat().st_size for p in (tmp_path / "s.db.scores").rglob("*.bwscores"))
    assert size < 1000 * 30 + 200  # 25 bytes a frame with three labels, plus the header


def test_a_new_day_or_a_new_model_starts_a_new_file(tmp_path: Path) -> None:
    log = ScoreLog(tmp_path / "scores", keep_days=0)
    log.set_model(["bear", "empty", "person"], "v1")
    log.append(row(T0, 0.9))
    log.append(row(T0 + DAY, 0.8))
    log.set_model(["bear", "empty", "person", "moose"], "v2")
    log.append(row(T0 + DAY + 1, 0.7, n=4))
    parts = list(log.read("gate"))
    assert [len(p) for p in parts] == [1, 1, 1]
    assert parts[-1].labels[-1] == "moose"
    assert [p.name for p in sorted((tmp_path / "scores" / "gate").iterdir())] == [
        "2025-06-15.bwscores",
        "2025-06-16.1.bwscores",
        "2025-06-16.bwscores",
    ]


def test_half_a_record_left_by_a_crash_is_ignored(tmp_path: Path) -> None:
    log = ScoreLog(tmp_path / "scores", keep_days=0)
    log.set_model(["bear", "empty", "person"], "v1")
    log.append(row(T0, 0.9))
    log.append(row(T0 + 1, 0.8))
    log.close()
    path = next((tmp_path / "scores" / "gate").iterdir())
    path.write_bytes(path.read_bytes()[:-7])
    (series,) = list(ScoreLog(tmp_path / "scores", keep_days=0).read("gate"))
    assert len(series) == 1


def test_old_days_are_deleted(tmp_path: Path) -> None:
    log = ScoreLog(tmp_path / "scores", keep_days=7)
    log.set_model(["bear", "empty", "person"], "v1")
    log.append(row(T0 - 10 * DAY, 0.9))
    log.append(row(T0, 0.9))
    log.flush(now=T0)
    assert [len(p) for p in log.read("gate")] == [1]
    assert log.cameras() == ["gate"]
