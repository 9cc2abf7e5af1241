"""The synthetic camera: exposure, day colour or night IR gray, blur, sensor noise and JPEG."""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

# Near-infrared gray: weights favour green, and vegetation gets a further boost (see _ir_gray).
_IR_WEIGHTS = np.array([0.15, 0.55, 0.30], dtype=np.float32)
_LUMA = np.array([0.114, 0.587, 0.299], dtype=np.float32)  # BT.601, BGR order
# Gray levels a subject keeps from what it hides (before exposure), so that the
# classes survive grayscale and IR: a cinnamon bear on dirt, or a brown bear on
# grass in an RGB-derived gray, would otherwise all but vanish.
_DAY_MIN_GAP = 35.0
_IR_MIN_GAP = 70.0


def _ir_gray(bgr: np.ndarray) -> np.ndarray:
    """Near-infrared-like gray from a BGR float image."""
    lum = bgr @ _IR_WEIGHTS
    # chlorophyll reflects NIR strongly: vegetation glows pale in IR footage
    lum += 0.8 * np.maximum(bgr[..., 1] - np.maximum(bgr[..., 0], bgr[..., 2]), 0.0)
    return lum


def _separation(subject_mean: float, behind: float, min_gap: float) -> float:
    """How far to move a subject's mean gray so it sits ``min_gap`` from what it hides (0: far enough)."""
    gap = subject_mean - behind
    if abs(gap) >= min_gap:
        return 0.0
    target = behind + math.copysign(min_gap, gap)
    if target < 20.0:  # no room below: a dark subject on dark ground shows up bright instead
        target = behind + min_gap
    return target - subject_mean


def _motion_kernel(length: int, angle: float) -> np.ndarray:
    line = np.zeros((length, length), np.float32)
    line[length // 2, :] = 1.0
    centre = ((length - 1) / 2, (length - 1) / 2)
    k = cv2.warpAffine(line, cv2.getRotationMatrix2D(centre, angle, 1.0), (length, length))
    return k / max(float(k.sum()), 1e-6)


@dataclass(frozen=True, slots=True)
class Camera:
    """How a drawn scene becomes a camera frame: exposure, day colour or night IR gray, blur, noise, JPEG."""

    night: bool
    gain: float
    contrast: float
    tint: tuple[float, float, float]  # per-channel BGR multipliers (white balance)
    blur_sigma: float  # 0 = no Gaussian blur
    motion_px: int  # 0 = no motion blur
    motion_angle: float  # degrees
    noise_sigma: float
    jpeg_quality: int  # 0 = no JPEG round trip
    glow: tuple[
        float, float, float
    ]  # IR illuminator hotspot: x, y, radius (fractions of the frame)

    def develop(
        self,
        scene: np.ndarray,
        horizon_y: int,
        subject: np.ndarray | None = None,
        plate: np.ndarray | None = None,
    ) -> np.ndarray:
        """The deterministic part of imaging: returns float32, HxWx3 by day or HxW (gray) by night.

        Splitting this from ``expose`` is what makes a walk-through's background
        identical frame to frame apart from the sensor noise added per frame.

        Args:
            scene: the drawn BGR ``uint8`` scene.
            horizon_y: the horizon row (the night sky is left unlit).
            subject: optional bool mask of the visible subject pixels, with
            plate: the scene without the subject. The subject is then kept at
                least ``_DAY_MIN_GAP`` (day, luma) or ``_IR_MIN_GAP`` (night)
                gray levels from what it hides; at night this stands in for fur
                and fabric reflecting NIR differently from the ground.
        """
        f: np.ndarray = scene.astype(np.float32)
        hidden = None  # (subject mask, the plate pixels it covers)
        if subject is not None and plate is not None and subject.any():
            hidden = (subject, plate[subject].astype(np.float32))
        if self.night:
            lum = _ir_gray(f)
            if hidden is not None:
                mask, behind_px = hidden
                behind = float(_ir_gray(behind_px).mean())
                lum[mask] += _separation(float(lum[mask].mean()), behind, _IR_MIN_GAP)
            lum[:horizon_y] *= 0.35  # the IR illuminator does not reach the sky
            h, w = lum.shape
            yy, xx = np.ogrid[:h, :w]
            gx, gy, gr = self.glow
            r2 = ((xx - gx * w) ** 2 + (yy - gy * h) ** 2) / (gr * w) ** 2
            lum = lum * self.gain * (0.55 + 0.7 * np.exp(-r2 / 2)).astype(np.float32) + 8.0
            # a fixed pivot, not the frame mean: a subject walking in must not shift the background
            f = (lum - 40.0) * self.contrast + 40.0
        else:
            if hidden is not None:
                # scale the subject's colours (keeping hue) so it also stands out in gray
                mask, behind_px = hidden
                mean = float(f[mask].mean(axis=0) @ _LUMA)
                behind = float(behind_px.mean(axis=0) @ _LUMA)
                gain = 1.0 + _separation(mean, behind, _DAY_MIN_GAP) / max(mean, 1.0)
                f[mask] *= min(max(gain, 0.4), 1.6)  # bounded: a subject keeps its colours
            f = ((f - 128.0) * self.contrast + 128.0) * (
                self.gain * np.array(self.tint, np.float32)
            )
        if self.blur_sigma > 0:
            f = cv2.GaussianBlur(f, (0, 0), self.blur_sigma)
        if self.motion_px > 1:
            f = cv2.filter2D(f, -1, _motion_kernel(self.motion_px, self.motion_angle))
        return f

    def expose(self, developed: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Add sensor noise (and the JPEG round trip) to a developed image; returns BGR ``uint8``."""
        noise = rng.standard_normal(developed.shape, dtype=np.float32) * self.noise_sigma
        out = np.clip(developed + noise, 0, 255).astype(np.uint8)
        if self.jpeg_quality:
            ok, buf = cv2.imencode(".jpg", out, [cv2.IMWRITE_JPEG_QUALITY, self.jpeg_quality])
            if ok:
                out = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)
        # night frames are gray in all three channels, as IR cameras deliver them
        return cv2.cvtColor(out, cv2.COLOR_GRAY2BGR) if out.ndim == 2 else out


def sample_camera(
    rng: np.random.Generator, night: bool, *, degrade: bool = True, video: bool = False
) -> Camera:
    """Draw imaging conditions for one image or one clip.

    Args:
        rng: the generator the conditions are drawn from.
        night: IR night mode (dark, low-contrast gray with an illuminator hotspot).
        degrade: allow Gaussian/motion blur and a JPEG round trip.
        video: a static clip: mild, fixed blur only and low noise, no JPEG (the
            video codec compresses anyway).

    Returns:
        The camera.
    """
    gain = rng.uniform(0.45, 0.75) if night else rng.uniform(0.75, 1.2)
    contrast = rng.uniform(0.7, 0.95) if night else rng.uniform(0.8, 1.15)
    b, g, r, gx, gy, gr = rng.uniform(
        (0.9, 0.95, 0.9, 0.35, 0.45, 0.35), (1.1, 1.05, 1.1, 0.65, 0.75, 0.7)
    )
    blur_roll, motion_roll, jpeg_roll = rng.random(3)
    blur, motion, quality = 0.0, 0, 0
    if video:
        blur = rng.uniform(0.3, 0.8)
        noise = rng.uniform(2.5, 4.0) if night else rng.uniform(1.0, 2.0)
    else:
        noise = rng.uniform(3.0, 9.0) if night else rng.uniform(1.0, 5.0)
        if degrade:
            blur = rng.uniform(0.6, 1.6) if blur_roll < 0.3 else 0.0
            motion = int(rng.integers(3, 8)) if motion_roll < 0.15 else 0
            quality = int(rng.integers(25, 70)) if jpeg_roll < 0.3 else 0
    return Camera(
        night=night,
        gain=float(gain),
        contrast=float(contrast),
        tint=(float(b), float(g), float(r)),
        blur_sigma=float(blur),
        motion_px=motion,
        motion_angle=float(rng.uniform(0, 180)),
        noise_sigma=float(noise),
        jpeg_quality=quality,
        glow=(float(gx), float(gy), float(gr)),
    )
