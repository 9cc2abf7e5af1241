"""Decode modes: which packets of a stream reach the decoder (``all``, ``keyframes``, ``auto``).

A keyframe (H.264 IDR) decodes on its own, so in ``keyframes`` mode every other
packet is dropped before the decoder sees it: the decode cost falls by the GOP
length. ``auto`` decodes everything until it has measured the stream's keyframe
interval, then keeps only keyframes when they alone come at least as often as
the camera's ``fps``. A stream that sends no keyframe for ``KEYFRAME_GAP_S`` in
keyframe mode (intra-refresh cameras send none at all) falls back to ``all``
with one warning, rather than going blind.

Pure bookkeeping on stream timestamps (seconds); no clock, no FFmpeg.
"""

from __future__ import annotations

import logging

logger = logging.getLogger(__name__)

KEYFRAME_GAP_S = 10.0  # stream seconds without a keyframe before keyframe mode gives up
KEYFRAME_GAP_PACKETS = 600  # the same without timestamps: packets since the last keyframe
DECODE_MODES = ("all", "keyframes", "auto")


class KeyframeTracker:
    """Decides per packet whether to decode it, and measures the keyframe rate.

    Args:
        mode: ``all``, ``keyframes`` or ``auto``.
        fps: the camera's sampling rate (``auto`` compares it with the keyframe rate).
        camera: the camera id, for logs.
        safe_source: the redacted source, for logs.
    """

    def __init__(self, mode: str, fps: float, camera: str, safe_source: str) -> None:
        if mode not in DECODE_MODES:
            raise ValueError(f"decode must be one of {DECODE_MODES}, got {mode!r}")
        self.requested = mode
        self._fps = fps
        self._camera = camera
        self._source = safe_source
        self.active = mode == "keyframes"  # dropping non-key packets now
        self.fell_back = False
        self._last_key_s: float | None = None
        self._first_key_s: float | None = None
        self._keys = 0
        self._since_key = 0
        self.interval_s: float | None = None  # the last measured keyframe interval

    @property
    def mode(self) -> str:
        """What is being decoded now: ``all`` or ``keyframes``."""
        return "keyframes" if self.active else "all"

    @property
    def keyframe_fps(self) -> float | None:
        """Keyframes per stream second so far (the frame rate keyframe mode can deliver)."""
        if self._keys < 2 or self._first_key_s is None or self._last_key_s is None:
            return None
        span = self._last_key_s - self._first_key_s
        return (self._keys - 1) / span if span > 0 else None

    def wants(self, keyframe: bool, t_s: float | None) -> bool:
        """Should the packet (a keyframe or not, stream time ``t_s``) be decoded?"""
        if keyframe:
            self._on_keyframe(t_s)
            return True
        self._since_key += 1
        if self.active and self._gap_too_long(t_s):
            self.active, self.fell_back = False, True
            logger.warning(
                "camera %s: no keyframe from %s for %s; decoding every frame instead",
                self._camera,
                self._source,
                f"{KEYFRAME_GAP_S:g} s" if t_s is not None else f"{self._since_key} packets",
            )
        return not self.active

    def _gap_too_long(self, t_s: float | None) -> bool:
        if t_s is not None and self._last_key_s is not None:
            return t_s - self._last_key_s > KEYFRAME_GAP_S
        return self._since_key > KEYFRAME_GAP_PACKETS

    def _on_keyframe(self, t_s: float | None) -> None:
        self._since_key = 0
        if t_s is None:
            return
        if self._last_key_s is not None and t_s > self._last_key_s:
            self.interval_s = t_s - self._last_key_s
        if self._first_key_s is None:
            self._first_key_s = t_s
        self._last_key_s = t_s
        self._keys += 1
        if self._keys == 2 and self.requested == "keyframes" and self.interval_s is not None:
            effective = min(self._fps, 1.0 / self.interval_s)
            logger.info(
                "camera %s: keyframes only, one every %.2f s: %.2f frames/s (fps %g requested)",
                self._camera,
                self.interval_s,
                effective,
                self._fps,
            )
        if self.requested == "auto" and not self.fell_back and self.interval_s is not None:
            wanted = self._fps <= 1.0 / self.interval_s
            if wanted != self.active:
                self.active = wanted
                logger.info(
                    "camera %s: keyframe every %.2f s, camera fps %g: decoding %s",
                    self._camera,
                    self.interval_s,
                    self._fps,
                    "keyframes only" if wanted else "every frame",
                )
