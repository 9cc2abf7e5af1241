"""The alert stage's repeat guard: like-the-rejected regions leave the frame's score and alert only as suppressed."""

from __future__ import annotations

import numpy as np

from monitor.alerts.repeats import RepeatGuard, appearance, peak_picture
from monitor.config import DecisionConfig
from monitor.decide.repeats import RejectedSpot, RepeatFilter, RepeatRules
from monitor.frames import Frame, Prediction

LABELS = ("bear", "empty", "person")
STATUE_BOX = (0.6, 0.5, 0.8, 0.8)
WALKER_BOX = (0.0, 0.5, 0.2, 0.8)


def statue(size: int = 64) -> np.ndarray:
    rng = np.random.default_rng(1)
    return np.kron(
        rng.integers(0, 256, (8, 8, 3), dtype=np.uint8),
        np.ones((size // 8, size // 8, 1), np.uint8),
    )


def grass(size: int = 64) -> np.ndarray:
    img = np.full((size, size, 3), (60, 100, 50), np.uint8)
    img[::4] += 20
    return img


def prediction(seq: int, walker: bool) -> Prediction:
    """Two regions: the statue's (always scored bear) and the left one (bear only while the walker is there)."""
    regions = np.stack([statue(), grass()])
    if walker:
        regions[1, 20:40, 20:44] = (90, 60, 40)
    region_probs = np.array(
        [[0.95, 0.04, 0.01], [0.9, 0.05, 0.05] if walker else [0.02, 0.97, 0.01]], np.float32
    )
    frame = Frame(
        "cam",
        seq,
        float(seq),
        1000.0 + seq,
        regions[0],
        regions=regions,
        boxes=(STATUE_BOX, WALKER_BOX),
    )
    row = region_probs[0].copy()
    row[0] = region_probs[:, 0].max()
    return Prediction(frame, row, float(seq), region_probs=region_probs, region=0)


def guard() -> RepeatGuard:
    cfg = DecisionConfig(window=3, min_hits=2, end_after_s=2.0, cooldown_s=0.0)
    g = RepeatGuard(RepeatFilter(RepeatRules()), LABELS, {"cam": cfg})
    g.refresh([RejectedSpot(7, "cam", "bear", STATUE_BOX, appearance(statue()), 900.0)])
    return g


def test_the_statue_leaves_the_score_and_the_walker_keeps_his() -> None:
    g = guard()
    kept, _ = g.apply(prediction(0, walker=False))
    assert kept.probs[0] < 0.05  # only the statue was bear-like, and it is taken out
    kept, _ = g.apply(prediction(1, walker=True))
    assert kept.probs[0] == np.float32(0.9) and kept.region == 1 and kept.box == WALKER_BOX


def test_the_statue_raises_suppressed_events_of_its_rejected_spot() -> None:
    g = guard()
    kinds = []
    for seq in range(6):
        _, suppressed = g.apply(prediction(seq, walker=False))
        kinds += [(s.spot, s.event.kind, s.region) for s in suppressed]
    assert kinds[0] == (7, "start", 0)
    g.refresh([])  # the rejection was undone
    kept, suppressed = g.apply(prediction(6, walker=False))
    assert [(s.spot, s.event.kind) for s in suppressed] == [(7, "end")]
    assert kept.probs[0] == np.float32(0.95)  # the statue counts again


def test_another_camera_or_label_is_untouched() -> None:
    g = guard()
    pred = prediction(0, walker=False)
    other = Prediction(
        Frame(
            "cam2",
            0,
            0.0,
            1000.0,
            pred.frame.image,
            regions=pred.frame.regions,
            boxes=pred.frame.boxes,
        ),
        pred.probs,
        0.0,
        region_probs=pred.region_probs,
    )
    kept, suppressed = g.apply(other)
    assert kept is other and suppressed == []


def test_a_single_region_frame_is_suppressed_whole_while_it_looks_the_same() -> None:
    cfg = DecisionConfig(window=3, min_hits=2)
    g = RepeatGuard(RepeatFilter(RepeatRules()), LABELS, {"cam": cfg})
    scene = statue()
    g.refresh([RejectedSpot(3, "cam", "bear", (0.0, 0.0, 1.0, 1.0), appearance(scene), 900.0)])
    probs = np.array([0.9, 0.05, 0.05], np.float32)
    same = Prediction(Frame("cam", 0, 0.0, 1000.0, scene), probs, 0.0)
    assert peak_picture(same) == appearance(scene)
    kept, _ = g.apply(same)
    assert kept.probs[0] == 0.0
    changed = scene.copy()
    changed[10:30, 10:30] = (90, 60, 40)  # something new in the scene
    kept, _ = g.apply(Prediction(Frame("cam", 1, 1.0, 1001.0, changed), probs, 1.0))
    assert kept.probs[0] == np.float32(0.9)
