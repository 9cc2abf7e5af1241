"""An event's snapshot: the full frame with the peak region's box drawn, and that region beside it.

A distant bear is a few pixels of a 640 px review snapshot; the region the
model actually looked at, shown next to the frame at the frame's height, is
what lets a reviewer confirm it. A whole-frame region gets no box and no
panel: there is nothing to point at.
"""

from __future__ import annotations

import cv2
import numpy as np

from monitor.frames import FULL_BOX, Frame, Prediction

BOX_BGR = (0, 215, 255)  # amber: visible on green grass, grey rock and IR night
PANEL_GAP_PX = 4


def annotate(
    snapshot: np.ndarray | None,
    box: tuple[float, float, float, float] | None,
    crop_rgb: np.ndarray | None,
) -> np.ndarray | None:
    """The review image for an event (BGR), or None without a snapshot.

    Args:
        snapshot: the frame's downscaled BGR snapshot.
        box: the peak region, normalised (x0, y0, x1, y1); None or the whole
            frame leaves the snapshot as it is.
        crop_rgb: the peak region as the model saw it (RGB), shown beside the frame.
    """
    if snapshot is None:
        return None
    if box is None or tuple(box) == FULL_BOX:
        return snapshot
    h, w = snapshot.shape[:2]
    out = snapshot.copy()
    x0, y0 = int(box[0] * w), int(box[1] * h)
    x1, y1 = min(w - 1, int(round(box[2] * w))), min(h - 1, int(round(box[3] * h)))
    thickness = max(1, round(w / 320))
    cv2.rectangle(out, (x0, y0), (x1, y1), (0, 0, 0), thickness + 2)
    cv2.rectangle(out, (x0, y0), (x1, y1), BOX_BGR, thickness)
    if crop_rgb is None:
        return out
    ch, cw = crop_rgb.shape[:2]
    side = (max(1, round(cw * h / ch)), h)
    panel = cv2.resize(
        cv2.cvtColor(crop_rgb, cv2.COLOR_RGB2BGR), side, interpolation=cv2.INTER_LINEAR
    )
    cv2.rectangle(panel, (0, 0), (panel.shape[1] - 1, panel.shape[0] - 1), BOX_BGR, thickness)
    gap = np.zeros((h, PANEL_GAP_PX, 3), dtype=np.uint8)
    return np.hstack([out, gap, panel])


def snapshot_of(frame: Frame | None, pred: Prediction | None) -> np.ndarray | None:
    """The frame's snapshot with the peak region drawn (``annotate``)."""
    if frame is None:
        return None
    if pred is None:
        return frame.snapshot
    return annotate(frame.snapshot, pred.box, pred.crop)
