"""The study's cameras and their footage: seeded day and IR-night walk-through clips with per-frame truth.

A camera is a fixed synthetic view (``walk_through(camera_seed=...)``): every
clip of one camera shows the same backdrop, near tree and imaging, with fresh
walkers and sensor noise. Each camera's footage is one video file (its walks
back to back) and a truth list, one entry per frame:

* ``bear`` / ``person`` — the subject shows at least half as much as it does
  at its most visible in that walk;
* ``partial`` — a subject is entering or leaving the frame or half behind
  the near tree (between a sixth and half of its best view shows): not
  scored; a reviewer still recognises it;
* ``hidden`` — a subject is there but all but invisible (under a sixth):
  not scored; a reviewer sees an empty scene;
* ``empty`` — nothing in view.

The frame index of a decided frame is its time on the file's timeline
(``captured_at`` minus the camera's first frame) times the clip's fps.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from training.synthetic.scenes import Clip, walk_through

FPS = 5.0
TRUTH_JSON = "truth.json"
PARTIAL = "partial"
HIDDEN = "hidden"
UNSCORED = (PARTIAL, HIDDEN)
_VISIBLE_SHARE = 0.5  # of the walk's most visible frame, to count as shown
_SEEN_SHARE = 1 / 6  # ... and to be seen at all
_DIFF_LEVELS = 24  # gray levels a pixel must differ from the clean background to be the subject's


@dataclass(frozen=True, slots=True)
class StudyCamera:
    """One camera of the study: its id (the video's stem), day or IR night, and its view seed."""

    id: str
    night: bool
    view_seed: tuple[int, ...]


def study_cameras(seed: int, day: int, night: int) -> list[StudyCamera]:
    """``day-1``… and ``night-1``… cameras, each with its own seeded view."""
    cams = [StudyCamera(f"day-{k + 1}", False, (seed, 0, k)) for k in range(day)]
    cams += [StudyCamera(f"night-{k + 1}", True, (seed, 1, k)) for k in range(night)]
    return cams


def frame_truth(clip: Clip) -> list[str]:
    """Per frame: the walk's label where its subject is well in view, ``partial``, ``hidden`` or ``empty``."""
    bg = clip.background.astype(np.int16)
    shown = [
        int((np.abs(f.astype(np.int16) - bg).max(axis=2) > _DIFF_LEVELS).sum()) if p else 0
        for f, p in zip(clip.frames, clip.present, strict=True)
    ]
    most = max(shown, default=0)
    out = []
    for n, present in zip(shown, clip.present, strict=True):
        if not present:
            out.append("empty")
        elif most and n >= _VISIBLE_SHARE * most:
            out.append(clip.label)
        elif most and n >= _SEEN_SHARE * most:
            out.append(PARTIAL)
        else:
            out.append(HIDDEN)
    return out


def write_footage(
    out: Path,
    cameras: Sequence[StudyCamera],
    walks: Sequence[str],
    frames_per_walk: int,
    size: int,
    phase_seed: Sequence[int],
) -> dict[str, dict[str, object]]:
    """Write ``out/<camera>.avi`` (MJPG, ``FPS``) and ``out/truth.json``; returns the truth.

    Args:
        cameras: the cameras to film.
        walks: what walks through, in order (``bear``, ``person`` or ``empty``), per camera.
        frames_per_walk: frames of each walk (a fifth of them lead-in, a fifth lead-out).
        size: square frame side in pixels.
        phase_seed: seeds the walkers and noise (another phase: fresh clips of the same views).
    """
    out.mkdir(parents=True, exist_ok=True)
    truth: dict[str, dict[str, object]] = {}
    lead = max(2, frames_per_walk // 5)
    for c, cam in enumerate(cameras):
        labels: list[str] = []
        path = out / f"{cam.id}.avi"
        writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), FPS, (size, size))
        if not writer.isOpened():
            raise OSError(f"OpenCV cannot write {path}")
        try:
            for w, label in enumerate(walks):
                rng = np.random.default_rng([*phase_seed, c, w])
                clip = walk_through(label, rng, frames_per_walk, (size, size), cam.night,
                                    lead_in=lead, lead_out=lead, camera_seed=cam.view_seed)  # fmt: skip
                for frame in clip.frames:
                    writer.write(frame)
                labels += frame_truth(clip)
        finally:
            writer.release()
        truth[cam.id] = {"night": cam.night, "fps": FPS, "frames": labels}
    (out / TRUTH_JSON).write_text(json.dumps(truth) + "\n", encoding="utf-8")
    return truth


def read_truth(folder: Path) -> dict[str, dict[str, object]]:
    """The truth ``write_footage`` wrote into ``folder``."""
    data: dict[str, dict[str, object]] = json.loads((folder / TRUTH_JSON).read_text())
    return data


def label_at(truth: Mapping[str, Mapping[str, object]], camera: str, offset_s: float) -> str:
    """The truth of ``camera``'s frame ``offset_s`` seconds into its footage (clamped to the file)."""
    frames = truth[camera]["frames"]
    assert isinstance(frames, list)
    fps = float(truth[camera]["fps"])  # type: ignore[arg-type]
    i = min(max(int(round(offset_s * fps)), 0), len(frames) - 1)
    return str(frames[i])
