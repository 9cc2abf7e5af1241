"""Capture threads: one per camera, reading, sampling and preprocessing frames into the FrameHub.

Each :class:`CaptureWorker` opens its camera through the :class:`FrameSource`
protocol, samples to the camera's ``fps`` (live: by monotonic time; files: by the
video's own timestamps, so replays are deterministic) and preprocesses in its own
thread, so decoding and resizing run in parallel across cameras. A failing camera
is never fatal: it goes ``reconnecting``, retries with capped, jittered backoff,
and is ``offline`` after ``reconnect.offline_after`` failed attempts, still trying.
URLs may hold passwords: only ``cfg.safe_source`` is logged or shown, and exception
texts are scrubbed. (FFmpeg prints some errors to stderr itself, e.g. ``Connection
to tcp://host:port failed``; they name the host but never the user info.)
"""

from __future__ import annotations

import logging
import random
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np

from monitor.capture.hub import FrameHub
from monitor.capture.motion import MotionGate, thumbnail
from monitor.capture.picture import Picture
from monitor.capture.rate import RateWindow, missed_slots
from monitor.capture.sources import FrameSource, Opener, open_source, scrub
from monitor.capture.view import ViewPlanner
from monitor.config import CameraConfig
from monitor.errors import SourceError
from monitor.frames import Frame
from monitor.metrics import Metrics
from monitor.model.image_stats import image_stats
from monitor.worker import Worker

logger = logging.getLogger(__name__)


MAX_CONSECUTIVE_BAD_READS = 25  # a file failing this often in a row has ended, header or not
SAMPLE_TOLERANCE_S = 0.0005  # POS_MSEC is a float: 300 may come back as 299.99999
MAX_BACKOFF_DOUBLINGS = 30  # a camera down for days must not overflow the float
GATE_DECISION_WAIT_S = 5.0  # a file's motion gate waits this long at most for a decision
STALL_RESYNC_S = 1.0  # a real-time replay this far behind restarts its clock instead of rushing


class _Sampler:
    """Picks timestamps at ``fps`` from a faster stream, restarting its grid after a gap."""

    def __init__(self, fps: float) -> None:
        self._interval_s = 1.0 / fps
        self._next_s: float | None = None
        self.last_missed = 0  # slots that passed without a frame before the last one taken

    def take(self, t_s: float) -> bool:
        if self._next_s is not None and t_s < self._next_s - SAMPLE_TOLERANCE_S:
            return False
        self.last_missed = missed_slots(self._next_s, t_s, self._interval_s)
        if self._next_s is None or t_s - self._next_s >= self._interval_s:
            self._next_s = t_s + self._interval_s  # first frame, or after a gap: no burst
        else:
            self._next_s += self._interval_s
        return True


@dataclass
class _Replay:
    """Where a file replay stands on its own timeline (seconds), across loop passes."""

    start_wall: float
    sampler: _Sampler  # kept across loop passes: the timeline, not the pass, sets the grid
    offset_s: float = 0.0
    anchor_mono: float | None = None
    pass_frames: int = 0
    last_s: float = 0.0
    prev_s: float = 0.0

    def rewind(self, fallback_period_s: float) -> None:
        """Start the next loop pass right after this one's last frame."""
        period = self.last_s - self.prev_s if self.last_s > self.prev_s else fallback_period_s
        self.offset_s += self.last_s + period
        self.pass_frames, self.last_s, self.prev_s = 0, 0.0, 0.0


# How one open-and-read session ended: stop() called, stream lost, file over, loop again.
_Outcome = Literal["stopped", "lost", "ended", "rewind"]


class CaptureWorker(Worker):
    """One camera's capture thread, ``capture:<camera id>``.

    Args:
        cfg: the camera's configuration.
        input_hw: the model's input (height, width).
        resize_method: from the model's metadata; every view plan region is
            letterboxed, which agrees with ``crop`` and ``squish`` on the square
            regions the plans make (see ``monitor.model.preprocess``).
        hub: where sampled frames go; the worker registers its camera at
            construction and closes it when it ends for good.
        metrics: the daemon's metrics.
        clock: monotonic clock (durations, live sampling, ``captured_mono``).
        wall_clock: epoch clock (``captured_at``).
        opener: opens the source; :func:`open_source` unless a test injects its own.
        gate_state: ``(camera, last seq delivered) -> (decided, positive)``: whether
            the decision on the last frame let through is in, and whether the
            camera's last decision was positive. None: never positive.
        max_batch: the inference batch limit (the view plan warns when a frame needs more).
    """

    def __init__(
        self,
        cfg: CameraConfig,
        input_hw: tuple[int, int],
        resize_method: str,
        hub: FrameHub,
        metrics: Metrics,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        opener: Opener = open_source,
        gate_state: Callable[[str, int], tuple[bool, bool]] | None = None,
        max_batch: int = 8,
    ) -> None:
        super().__init__(f"capture:{cfg.id}", clock)
        self.cfg = cfg
        self.view = ViewPlanner(cfg.id, cfg.view, input_hw, max_batch, cfg.fps)
        self._input_hw = input_hw
        self._resize_method = resize_method
        self._hub = hub
        self._metrics = metrics
        self._clock = clock
        self._wall_clock = wall_clock
        self._opener = opener
        self._gate_state = gate_state or (lambda _camera, _seq: (True, False))
        gate = cfg.motion_gate
        self._gate = (
            MotionGate(gate.pixel_threshold, gate.min_changed_fraction, gate.recheck_s)
            if gate.enabled
            else None
        )
        self._prev_thumb: np.ndarray | None = None
        self._rng = random.Random()
        self._status = ""
        self._last_frame_mono: float | None = None
        self._last_error: str | None = None
        self._frames_read = 0
        self._frames_missed = 0
        self._sampled = 0
        self._read_rate = RateWindow()  # sampled frames per second (live)
        self._speed = RateWindow()  # video seconds per second (files in real-time pacing)
        self._seq = 0
        self._failures = 0  # consecutive attempts that produced no frame
        hub.register(cfg.id)
        self._set_status("starting")

    # Read from other threads: each property is one attribute read, never torn.
    @property
    def status(self) -> str:
        """``starting``, ``online``, ``reconnecting``, ``offline`` or ``ended``."""
        return self._status

    @property
    def last_frame_mono(self) -> float | None:
        """``clock()`` of the last frame read; it stalls while a file waits on the hub."""
        return self._last_frame_mono

    @property
    def last_error(self) -> str | None:
        """The most recent problem, redacted; kept after the camera recovers."""
        return self._last_error

    @property
    def frames_read(self) -> int:
        """Frames read from the source, sampled or not."""
        return self._frames_read

    @property
    def frames_missed(self) -> int:
        """Live sources: frames the camera's fps asked for that never arrived in time."""
        return self._frames_missed

    @property
    def read_fps(self) -> float | None:
        """Sampled frames per second lately (None until a few seconds are known)."""
        return self._read_rate.rate()

    @property
    def replay_speed(self) -> float | None:
        """Files in real-time pacing: video seconds per wall second lately (1.0 = real time)."""
        return (
            self._speed.rate()
            if self.cfg.kind == "file" and self.cfg.pacing == "realtime"
            else None
        )

    @property
    def finished_job(self) -> bool:
        """A file that reached its end (or a source that can never open) is done, not dead."""
        return self._status == "ended"

    def stop(self) -> None:
        """Ask the thread to exit.

        It exits within ~1 s from backoff, pacing or a full hub slot. A decoder call
        (PyAV or OpenCV) cannot be interrupted: a blocked read ends within
        ``read_timeout_s``, a blocked open within ``open_timeout_s`` (the worst case).
        """
        self.stop_event.set()

    def _run(self) -> None:
        logger.info("camera %s: capture starting from %s", self.cfg.id, self.cfg.safe_source)
        try:
            self._loop()
        finally:
            self._hub.close(self.cfg.id)
            if self._status != "ended":
                self._set_status("offline")
            logger.info("camera %s: capture stopped (%s)", self.cfg.id, self._status)

    def _loop(self) -> None:
        replay = _Replay(start_wall=self._wall_clock(), sampler=_Sampler(self.cfg.fps))
        reconnecting = False
        while not self.stop_event.is_set():
            if reconnecting:
                self._metrics.reconnects.labels(camera=self.cfg.id).inc()
            try:
                outcome = self._session(replay)
            except Exception as exc:  # the loop boundary: a camera bug must not kill the thread
                self._log_unexpected(exc)
                outcome = "lost"
            if outcome == "ended":
                self._set_status("ended")
                return
            reconnecting = outcome == "lost"
            if reconnecting:
                self._backoff()

    def _session(self, replay: _Replay) -> _Outcome:
        """Open the source once and read it until it is lost, ends, or we are stopped."""
        try:
            source = self._opener(self.cfg)
        except SourceError as exc:
            if not exc.retry:
                self._last_error = str(exc)
                logger.error("camera %s: %s; giving up", self.cfg.id, exc)
                return "ended"
            self._fail(str(exc))
            return "lost"
        try:
            if self.cfg.kind == "file":
                return self._pump_file(source, replay)
            return self._pump_live(source)
        finally:
            source.release()

    def _pump_live(self, source: FrameSource) -> _Outcome:
        sampler = _Sampler(self.cfg.fps)
        self._read_rate.reset()
        self._metrics.target_fps.labels(camera=self.cfg.id).set(self.cfg.fps)
        got_frame = False
        while not self.stop_event.is_set():
            if not source.grab():
                if self.stop_event.is_set():
                    break
                if source.skip():  # a corrupt frame; the stream goes on
                    self._metrics.read_errors.labels(camera=self.cfg.id).inc()
                    continue
                if got_frame:
                    self._lost()
                else:
                    self._fail(f"{self.cfg.safe_source} opened but delivered no frame")
                return "lost"
            got_frame = True
            now = self._on_frame_read()
            if sampler.take(now) and (picture := source.retrieve()) is not None:
                if (age := source.age_s()) is not None:
                    self._metrics.frame_age.labels(camera=self.cfg.id).set(age)
                self._count_rate(now, sampler.last_missed)
                self._deliver(picture, now, self._wall_clock(), live=True)
        return "stopped"

    def _pump_file(self, source: FrameSource, replay: _Replay) -> _Outcome:
        bad_reads = 0
        while not self.stop_event.is_set():
            if not source.grab():
                bad_reads += 1
                # A failed read before the frame count is a corrupt frame: skip it.
                if bad_reads > MAX_CONSECUTIVE_BAD_READS or not source.skip():
                    return self._file_finished(replay)
                self._metrics.read_errors.labels(camera=self.cfg.id).inc()
                continue
            bad_reads = 0
            self._on_frame_read()
            pos_s = source.position_ms() / 1000.0
            replay.prev_s, replay.last_s = replay.last_s, pos_s
            replay.pass_frames += 1
            t_s = replay.offset_s + pos_s
            if replay.sampler.take(t_s) and self._pace(replay, t_s):
                captured_at = (
                    replay.start_wall + t_s if self.cfg.pacing == "fast" else self._wall_clock()
                )
                if (picture := source.retrieve()) is not None:
                    self._count_rate(self._clock(), 0, t_s)
                    self._deliver(picture, self._clock(), captured_at, live=False)
        return "stopped"

    def _pace(self, replay: _Replay, t_s: float) -> bool:
        """In real-time pacing, wait until the frame's moment; False when stopped meanwhile."""
        if self.cfg.pacing != "realtime":
            return True
        now = self._clock()
        if replay.anchor_mono is None or now - (replay.anchor_mono + t_s) > STALL_RESYNC_S:
            replay.anchor_mono = now - t_s
        delay = replay.anchor_mono + t_s - now
        return delay <= 0 or not self.stop_event.wait(delay)

    def _file_finished(self, replay: _Replay) -> _Outcome:
        if replay.pass_frames == 0:
            self._last_error = f"video file {self.cfg.safe_source} has no readable frames"
            logger.error("camera %s: %s", self.cfg.id, self._last_error)
            return "ended"
        if self.cfg.loop:
            logger.debug("camera %s: end of %s, looping", self.cfg.id, self.cfg.safe_source)
            replay.rewind(1.0 / self.cfg.fps)
            return "rewind"
        logger.info("camera %s: end of %s", self.cfg.id, self.cfg.safe_source)
        return "ended"

    def _count_rate(self, mono: float, missed: int, video_s: float | None = None) -> None:
        """Track the read rate (and a real-time file's speed) and count missed frames."""
        self._sampled += 1
        self._read_rate.add(mono, self._sampled)
        camera = self.cfg.id
        if missed:
            self._frames_missed += missed
            self._metrics.frames_missed.labels(camera=camera).inc(missed)
        rate = self._read_rate.rate()
        if rate is not None:
            self._metrics.read_fps.labels(camera=camera).set(rate)
        if video_s is not None and self.cfg.pacing == "realtime":
            self._speed.add(mono, video_s)
            speed = self._speed.rate()
            if speed is not None:
                self._metrics.replay_speed.labels(camera=camera).set(speed)

    def _on_frame_read(self) -> float:
        now = self._clock()
        self.beat()
        self._frames_read += 1
        self._last_frame_mono = now
        if self._status != "online":
            self._failures = 0
            self._set_status("online")
        return now

    def _deliver(self, picture: Picture, mono: float, captured_at: float, live: bool) -> None:
        """Gate, preprocess and measure one sampled frame, then hand it to the hub (blocking for files)."""
        self._metrics.frames_offered.labels(camera=self.cfg.id).inc()
        # Converted once, straight to the two sizes needed; the gate's thumbnail
        # is cut from the snapshot, not from the full frame.
        snapshot = picture.snapshot(self.cfg.snapshot_width)
        thumb = thumbnail(snapshot)
        prev, self._prev_thumb = self._prev_thumb, thumb
        diff = (
            None
            if prev is None or prev.shape != thumb.shape
            else float(np.mean(np.abs(thumb - prev)))
        )
        # Files are gated on their own timeline so a fast replay re-checks on schedule.
        gate_t = captured_at if not live else mono
        if (
            self._gate is not None
            and not self._gate.check(thumb, gate_t, lambda: self._last_positive(live)).run
        ):
            self._metrics.frames_dropped.labels(camera=self.cfg.id, reason="no_motion").inc()
            return
        # A plan that only ever looks at the whole frame needs no more than a
        # couple of model inputs' worth of pixels; tiles and motion regions
        # need the camera's full resolution (regions are cut from it once).
        bgr = picture.bgr(
            self._full_plan_width(picture.hw) if self.view.cfg.plan == "full" else None
        )
        view = self.view.prepare(bgr, gate_t)
        if view is None:  # a motion plan with nothing moving and no full pass due
            self._metrics.frames_dropped.labels(camera=self.cfg.id, reason="no_motion").inc()
            return
        frame = Frame(
            camera=self.cfg.id,
            seq=self._seq,
            captured_mono=mono,
            captured_at=captured_at,
            image=view.centre,
            snapshot=snapshot,
            live=live,
            stats=image_stats(view.centre),
            frame_diff=diff,
            source_hw=picture.hw,
            regions=view.inputs,
            boxes=view.boxes,
            zones=view.zones,
            zone_thresholds=view.zone_thresholds,
        )
        self._seq += 1
        self._hub.put(frame, self.stop_event)

    def _full_plan_width(self, hw: tuple[int, int]) -> int:
        """The narrowest frame that still gives the model its centre square at full input size.

        The whole-frame region needs less, the centre square (image statistics
        for drift, measured like the training reference) needs exactly this.
        """
        height, width = hw
        return max(1, round(width * max(self._input_hw) / max(1, min(height, width))))

    def _last_positive(self, live: bool) -> bool:
        """Was the camera's last decision positive? Unknown counts as yes for live sources.

        A file waits for the decision instead (bounded), so a replay gates the
        same frames however fast the model is: deterministic.
        """
        last_seq = self._seq - 1
        decided, positive = self._gate_state(self.cfg.id, last_seq)
        if live:
            return positive or not decided
        deadline = self._clock() + GATE_DECISION_WAIT_S
        while not decided and not self.stop_event.is_set() and self._clock() < deadline:
            self.stop_event.wait(0.002)
            decided, positive = self._gate_state(self.cfg.id, last_seq)
        return positive or not decided

    def _lost(self) -> None:
        self._last_error = (
            f"stream {self.cfg.safe_source} stopped delivering frames "
            f"(read failed or nothing within {self.cfg.read_timeout_s:g} s)"
        )
        logger.warning("camera %s: %s; reconnecting", self.cfg.id, self._last_error)
        self._set_status("reconnecting")
        self._read_rate.reset()
        self._metrics.read_fps.labels(camera=self.cfg.id).set(0)

    def _fail(self, message: str) -> None:
        """Record an attempt that produced no frame, and the status that implies."""
        self._failures += 1
        self._last_error = message
        offline = self._failures >= self.cfg.reconnect.offline_after
        self._set_status("offline" if offline else "reconnecting")
        logger.warning("camera %s: %s (attempt %d failed)", self.cfg.id, message, self._failures)

    def _backoff(self) -> None:
        rc = self.cfg.reconnect
        doublings = min(max(self._failures - 1, 0), MAX_BACKOFF_DOUBLINGS)
        delay = min(rc.max_s, rc.initial_s * 2**doublings)
        # Jitter, so cameras behind one failed switch do not retry in lockstep.
        self.stop_event.wait(delay * self._rng.uniform(0.5, 1.0))

    def _log_unexpected(self, exc: Exception) -> None:
        # Not logger.exception: OpenCV/FFmpeg messages may quote the raw URL, so
        # the traceback is scrubbed of credentials before it is logged.
        trace = scrub("".join(traceback.format_exception(exc)), self.cfg)
        logger.error("camera %s: capture failed unexpectedly; reconnecting\n%s", self.cfg.id, trace)
        self._metrics.read_errors.labels(camera=self.cfg.id).inc()
        self._fail(scrub(f"unexpected error: {type(exc).__name__}: {exc}", self.cfg))

    def _set_status(self, status: str) -> None:
        if status == self._status:
            return
        logger.info("camera %s: status %s -> %s", self.cfg.id, self._status or "-", status)
        self._status = status
        self._metrics.set_camera_status(self.cfg.id, status)
