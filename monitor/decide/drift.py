"""Per-camera domain-shift and degradation monitoring against the model's training reference.

**The statistic.** A fixed camera sees a narrow slice of what a training set
covers: one scene, one lens, one time of day. A symmetric two-sample statistic
(KS, PSI or Wasserstein between the camera's window and the whole training
distribution) is therefore large for every healthy camera, because the camera
is *narrower*, not *elsewhere*. What the model cares about is whether the
camera's frames fall where the training data was. So bearwatch uses a one-sided
**tail Kolmogorov–Smirnov distance**: the two-sample KS difference of the
empirical CDFs, evaluated only at the edges of the training range (the reference's 5–95 %
quantile range widened by a quarter of its width on each side) and only in
the direction of *more* mass beyond them than training had:

    D_tail = max(F_win(lo) − F_ref(lo),  (1 − F_win(hi)) − (1 − F_ref(hi)))

It is 0 for a camera whose frames sit anywhere inside the training range, and
approaches 1 when every frame is beyond it (night, fog, blur). It is bounded,
needs only the 21 quantiles the export stores, and reads as "the share of
frames outside what training saw, above the share training had there". Signals
where only one direction is harmful (sharpness, model confidence: only lower
values; grayscale share: only higher) use one tail.

**Windows and hysteresis.** Each signal keeps the last ``window`` frames; a
camera becomes ``shifted`` when any signal's D_tail ≥ ``enter`` with at least
``min_samples`` frames, and returns to ``in_domain`` only when all are ≤
``exit``, so it does not flap around one threshold.

**Unfamiliar share.** With a model that carries feature statistics, each
frame also brings its feature-space OOD score (``monitor.model.features``);
the window keeps whether each frame was over the calibrated threshold. By
construction about ``1 − tpr`` (5 %) of in-domain frames are, so the signal is
the share over it *above* that rate, on the same 0..1 scale and with the same
``enter``/``exit`` hysteresis as the tail distances. Sharp, well-lit footage
of the wrong world passes every pixel statistic but not this.

**Degraded** is separate from shifted and wins over it: a frozen image
(consecutive frames identical for ``frozen_after_s``), black frames or uniform
frames (lens covered) for ``degraded_frames`` in a row.

Pure: no clock reads, no I/O; times are arguments.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from monitor.model.reference import QUANTILE_LEVELS

RANGE_MARGIN = 0.25

DriftState = Literal["in_domain", "shifted", "degraded"]

# Which tails matter per signal: "both", "low" or "high".
TAILS: dict[str, str] = {
    "brightness": "both",
    "contrast": "both",
    "colourfulness": "both",
    "grayscale": "high",
    "sharpness": "low",
    "confidence": "low",
}
SIGNAL_NAMES = {
    ("brightness", "low"): "dark",
    ("brightness", "high"): "overexposed",
    ("contrast", "low"): "low contrast",
    ("contrast", "high"): "high contrast",
    ("colourfulness", "low"): "washed-out colour",
    ("colourfulness", "high"): "unusual colour",
    ("grayscale", "high"): "grayscale/IR",
    ("sharpness", "low"): "blurred",
    ("confidence", "low"): "low model confidence",
    ("unfamiliar", "high"): "unfamiliar scenes",
}
UNFAMILIAR = "unfamiliar"


@dataclass(frozen=True, slots=True)
class DriftSettings:
    """Thresholds of the drift monitor (validated by ``monitor.config.DriftConfig``)."""

    window: int = 60
    min_samples: int = 30
    enter: float = 0.5
    exit: float = 0.25
    frozen_after_s: float = 30.0
    frozen_diff: float = 0.25
    black_brightness: float = 0.04
    uniform_contrast: float = 0.015
    degraded_frames: int = 10


@dataclass(frozen=True, slots=True)
class DriftChange:
    """A change of a camera's drift state."""

    camera: str
    at: float
    old: DriftState
    new: DriftState
    flags: tuple[str, ...]
    statistics: Mapping[str, float]


class _Reference:
    """One signal's reference distribution from its 21 quantiles."""

    def __init__(self, summary: Mapping[str, Any]) -> None:
        q = np.asarray(summary["quantiles"], dtype=np.float64)
        self.q = np.maximum.accumulate(q)
        self.levels = np.asarray(QUANTILE_LEVELS)
        self.mean = float(summary.get("mean", float(q.mean())))
        q05, q95 = float(self.q[1]), float(self.q[-2])
        self.span = max(q95 - q05, 1e-6)
        # The "training range" is the 5-95 % range widened by a quarter on each
        # side, so a camera whose frames sit in a dense cluster right at a
        # quantile (common with small reference sets) is not called shifted.
        self.lo, self.hi = q05 - RANGE_MARGIN * self.span, q95 + RANGE_MARGIN * self.span
        # The share of the training set beyond each edge (usually 0 after widening).
        self.low_mass, self.high_mass = self.cdf(self.lo - 1e-12), 1.0 - self.cdf(self.hi)

    def cdf(self, x: float) -> float:
        """F_ref(x): share of the reference ≤ x (right-continuous for ties)."""
        idx = np.searchsorted(self.q, x, side="right")
        if idx == 0:
            return 0.0
        if idx >= len(self.q):
            return 1.0
        x0, x1 = self.q[idx - 1], self.q[idx]
        l0, l1 = self.levels[idx - 1], self.levels[idx]
        return float(l0 + (l1 - l0) * (x - x0) / (x1 - x0)) if x1 > x0 else float(l1)


def tail_distance(ref: _Reference, values: np.ndarray, tails: str) -> tuple[float, str]:
    """The one-sided tail KS distance of ``values`` from ``ref``; returns (D, which tail)."""
    return _tail(ref, float(np.mean(values < ref.lo)), float(np.mean(values > ref.hi)), tails)


def _tail(ref: _Reference, share_low: float, share_high: float, tails: str) -> tuple[float, str]:
    low = share_low - ref.low_mass if tails in ("both", "low") else 0.0
    high = share_high - ref.high_mass if tails in ("both", "high") else 0.0
    return (max(low, 0.0), "low") if low >= high else (max(high, 0.0), "high")


class _TailWindow:
    """The last ``size`` values of one signal, as running counts beyond the training range.

    Counting on append and on eviction keeps each frame's update O(1): the
    alert thread does this for every signal of every frame.
    """

    def __init__(self, ref: _Reference, size: int) -> None:
        self.ref = ref
        self._flags: deque[tuple[bool, bool]] = deque(maxlen=size)
        self.n_low = self.n_high = 0

    def __len__(self) -> int:
        return len(self._flags)

    def append(self, x: float) -> None:
        if len(self._flags) == self._flags.maxlen:
            old_low, old_high = self._flags[0]
            self.n_low -= old_low
            self.n_high -= old_high
        flags = (x < self.ref.lo, x > self.ref.hi)
        self._flags.append(flags)
        self.n_low += flags[0]
        self.n_high += flags[1]

    def distance(self, tails: str) -> tuple[float, str]:
        n = len(self._flags)
        return _tail(self.ref, self.n_low / n, self.n_high / n, tails)


@dataclass(slots=True)
class _CameraDrift:
    windows: dict[str, _TailWindow]
    unfamiliar: deque[bool]

    state: DriftState = "in_domain"
    flags: tuple[str, ...] = ()
    statistics: dict[str, float] = field(default_factory=dict)
    bad_run: int = 0
    bad_reason: str = ""
    low_res: bool = False
    unchanged_since: float | None = None


class DriftMonitor:
    """Tracks every camera's drift state.

    Args:
        reference: the model's reference statistics (``ModelMetadata.reference``).
        settings: thresholds.
        input_hw: the model's input size; a camera delivering fewer pixels than
            this is flagged ``low resolution`` (its frames are upscaled).
        unfamiliar_rate: the share of in-domain frames over the model's OOD
            threshold (1 − its calibration TPR); None when the model has no
            feature statistics (no unfamiliar-share signal).
    """

    def __init__(
        self,
        reference: Mapping[str, Any],
        settings: DriftSettings,
        input_hw: tuple[int, int] | None = None,
        unfamiliar_rate: float | None = None,
    ) -> None:
        self.settings = settings
        self.input_hw = input_hw
        self.unfamiliar_rate = unfamiliar_rate
        self.refs = {name: _Reference(s) for name, s in reference.items() if name in TAILS}
        self._cams: dict[str, _CameraDrift] = {}

    def state(self, camera: str) -> tuple[DriftState, tuple[str, ...]]:
        cam = self._cams.get(camera)
        return ("in_domain", ()) if cam is None else (cam.state, cam.flags)

    def statistics(self, camera: str) -> dict[str, float]:
        cam = self._cams.get(camera)
        return {} if cam is None else dict(cam.statistics)

    def ood_score(
        self, stats: Mapping[str, float], confidence: float | None = None
    ) -> tuple[float, list[str]]:
        """How far one frame lies outside the training range: 0 inside, up to 1; with reasons.

        Each signal's distance beyond the reference's 5–95 % range is measured in
        units of that range; the score is the largest, capped at 1.
        """
        values = dict(stats)
        if confidence is not None:
            values["confidence"] = confidence
        score, reasons = 0.0, []
        for name, x in values.items():
            ref, tails = self.refs.get(name), TAILS.get(name)
            if ref is None or tails is None:
                continue
            below = (ref.lo - x) / ref.span if tails in ("both", "low") else 0.0
            above = (x - ref.hi) / ref.span if tails in ("both", "high") else 0.0
            dist = max(below, above, 0.0)
            if name == "grayscale" and x >= 0.5 and ref.mean < 0.05:
                dist = 1.0
            if dist >= 0.25:
                reasons.append(SIGNAL_NAMES[(name, "low" if below >= above else "high")])
            score = max(score, min(dist, 1.0))
        return round(score, 4), reasons

    def observe(
        self,
        camera: str,
        at: float,
        stats: Mapping[str, float],
        confidence: float,
        frame_diff: float | None,
        source_hw: tuple[int, int] | None = None,
        ood_score: float | None = None,
    ) -> DriftChange | None:
        """Add one frame; returns a change when the camera's state changed.

        Args:
            camera: camera id.
            at: the frame's time (seconds).
            stats: ``monitor.model.image_stats.image_stats`` of the frame.
            confidence: the model's max probability for the frame.
            frame_diff: mean absolute difference from the previous frame (0..255), None if unknown.
            source_hw: the (height, width) the camera delivered.
            ood_score: the frame's feature score in units of the threshold (None: unknown).
        """
        cam = self._cams.get(camera)
        if cam is None:
            cam = self._cams[camera] = _CameraDrift(
                windows={n: _TailWindow(ref, self.settings.window) for n, ref in self.refs.items()},
                unfamiliar=deque(maxlen=self.settings.window),
            )
        if ood_score is not None and self.unfamiliar_rate is not None:
            cam.unfamiliar.append(ood_score > 1.0)
        values = {**stats, "confidence": confidence}
        for name, win in cam.windows.items():
            if name in values:
                win.append(float(values[name]))
        if source_hw is not None and self.input_hw is not None:
            cam.low_res = source_hw[0] < self.input_hw[0] or source_hw[1] < self.input_hw[1]
        degraded = self._degraded(cam, at, stats, frame_diff)
        if degraded:
            return self._change(cam, camera, at, "degraded", (degraded,))
        shifted = self._shifted(cam)
        if shifted is None:
            return None
        return self._change(cam, camera, at, "shifted" if shifted else "in_domain", tuple(shifted))

    def _degraded(
        self, cam: _CameraDrift, at: float, stats: Mapping[str, float], diff: float | None
    ) -> str:
        s = self.settings
        reason = ""
        if stats.get("brightness", 1.0) < s.black_brightness:
            reason = "black frames"
        elif stats.get("contrast", 1.0) < s.uniform_contrast:
            reason = "uniform frames (lens covered?)"
        cam.bad_run = cam.bad_run + 1 if reason else 0
        if diff is not None and diff < s.frozen_diff:
            cam.unchanged_since = at if cam.unchanged_since is None else cam.unchanged_since
            if at - cam.unchanged_since >= s.frozen_after_s:
                return "frozen image"
        else:
            cam.unchanged_since = None
        if cam.bad_run >= s.degraded_frames:
            return reason
        if cam.state == "degraded" and (cam.bad_run > 0 or cam.unchanged_since is not None):
            return cam.flags[0] if cam.flags else reason  # not yet recovered
        return ""

    def _shifted(self, cam: _CameraDrift) -> list[str] | None:
        """Signals beyond ``enter`` (a new list), [] when all are back under ``exit``, None: no change."""
        s = self.settings
        flags, worst = [], 0.0
        for name, win in cam.windows.items():
            if len(win) < s.min_samples:
                continue
            d, tail = win.distance(TAILS[name])

            cam.statistics[name] = round(d, 4)
            worst = max(worst, d)
            if d >= s.enter:
                flags.append(SIGNAL_NAMES[(name, tail)])
        if self.unfamiliar_rate is not None and len(cam.unfamiliar) >= s.min_samples:
            d = max(sum(cam.unfamiliar) / len(cam.unfamiliar) - self.unfamiliar_rate, 0.0)
            cam.statistics[UNFAMILIAR] = round(d, 4)
            worst = max(worst, d)
            if d >= s.enter:
                flags.append(SIGNAL_NAMES[(UNFAMILIAR, "high")])
        if cam.low_res:
            flags.append("low resolution")
            worst = 1.0
        if cam.state == "shifted":
            if worst <= s.exit:
                return []
            return flags or None
        if cam.state == "degraded":
            return flags
        return flags or None

    def _change(
        self, cam: _CameraDrift, camera: str, at: float, new: DriftState, flags: tuple[str, ...]
    ) -> DriftChange | None:
        if new == cam.state:
            # Still shifted (or degraded) for more reasons: remember them, but one
            # review event per change of state is enough.
            cam.flags = tuple(dict.fromkeys(cam.flags + flags))
            return None
        old = cam.state
        cam.state, cam.flags = new, flags
        return DriftChange(camera, at, old, new, flags, dict(cam.statistics))
