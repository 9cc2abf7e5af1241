"""The parity check's camera path: a picture sent as a 4:2:0 camera frame classifies like the same JPEG file."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from tests.media import scene
from training.parity import camera_probs, edge_probs


def test_camera_path_agrees_with_the_file_path(color_model: Path, tmp_path: Path) -> None:
    files = []
    for i, kind in enumerate(["bear", "empty", "person"] * 4):
        path = tmp_path / f"{kind}-{i}.jpg"
        cv2.imwrite(str(path), scene(kind, width=300 + 10 * i, height=200, seed=i))
        files.append(path)
    clf, edge = edge_probs(color_model, files)
    cam = camera_probs(clf, files)
    assert np.array_equal(cam.argmax(1), edge.argmax(1))
    assert float(np.abs(cam - edge).max()) <= 0.02
