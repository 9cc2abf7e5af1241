"""Draw one 1080p frame's view-plan regions into ``docs/view_plan.jpg`` (the README's picture).

Run from the repository root: ``python docs/view_plan.py``. The frame is a
seeded wide scene from ``training.synthetic.wide`` (a bear low in the right
fifth, a person near the horizon); the regions are the runtime's own
(``monitor.capture.view``) for a 160 px model (the bundled one): the whole frame (letterboxed),
the 15 tiles of 512 px of ``tiles`` / ``auto_adds: tiles`` in blue, and the
motion regions ``auto`` adds by default, around both subjects, in amber.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from monitor.capture.view import ViewPlanner, static_plan
from monitor.config.camera import ViewConfig
from training.synthetic.wide import render_wide

OUT = Path(__file__).with_name("view_plan.jpg")


def main() -> None:
    frame = render_wide(["bear", "person"], np.random.default_rng(2), (1920, 1080), occlusion=0.0)
    canvas = frame.image.copy()
    plan = static_plan(ViewConfig(auto_adds="tiles"), 1920, 1080, (160, 160))
    tiles = [b for b, k in zip(plan.boxes, plan.kinds, strict=True) if k == "tile"]
    for i, (x0, y0, x1, y1) in enumerate(tiles):
        cv2.rectangle(canvas, (x0 + 3, y0 + 3), (x1 - 3, y1 - 3), (255, 140, 40), 3)
    for i in (0, 7):  # two tiles filled: one tile's extent, and how far neighbours overlap
        x0, y0, x1, y1 = tiles[i]
        tint = canvas.copy()
        cv2.rectangle(tint, (x0, y0), (x1, y1), (255, 140, 40), -1)
        canvas = cv2.addWeighted(tint, 0.25, canvas, 0.75, 0)
    cv2.rectangle(canvas, (2, 2), (1917, 1077), (255, 255, 255), 4)
    motion = ViewPlanner("doc", ViewConfig(plan="motion"), (160, 160))
    motion.prepare(frame.background, 0.0)
    view = motion.prepare(frame.image, 0.5)
    for (x0, y0, x1, y1), kind in zip(
        view.boxes if view else (), view.kinds if view else (), strict=True
    ):
        if kind == "motion":
            p0, p1 = (int(x0 * 1920), int(y0 * 1080)), (int(x1 * 1920), int(y1 * 1080))
            cv2.rectangle(canvas, p0, p1, (0, 215, 255), 6)
    cv2.putText(canvas, "whole frame (white); tiles: 15 of 512 px (blue, 2 filled); motion regions (amber)",
                (30, 60), cv2.FONT_HERSHEY_SIMPLEX, 1.3, (255, 255, 255), 3, cv2.LINE_AA)  # fmt: skip
    small = cv2.resize(canvas, (960, 540), interpolation=cv2.INTER_AREA)
    cv2.imwrite(str(OUT), small, [cv2.IMWRITE_JPEG_QUALITY, 85])
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
