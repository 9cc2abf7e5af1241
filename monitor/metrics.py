"""Prometheus metrics for one daemon (or one replay): a registry per instance, so tests stay independent."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from monitor.types import CAMERA_STATUSES

LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0, 30.0)
INFERENCE_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0)
BATCH_BUCKETS = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 128, 256)


class Metrics:
    """Every metric bearwatch exports. Camera labels are ids, never URLs (URLs may hold secrets)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.frames_offered = Counter(
            "bearwatch_frames_offered_total",
            "Sampled frames handed to the pipeline",
            ["camera"],
            registry=r,
        )
        self.frames_processed = Counter(
            "bearwatch_frames_processed_total",
            "Frames classified and decided",
            ["camera"],
            registry=r,
        )
        self.frames_dropped = Counter(
            "bearwatch_frames_dropped_total",
            "Frames not classified, by reason (superseded, stale, no_motion, error, shutdown)",
            ["camera", "reason"],
            registry=r,
        )
        self.batch_size = Histogram(
            "bearwatch_batch_size",
            "Images (regions) per inference batch",
            buckets=BATCH_BUCKETS,
            registry=r,
        )
        self.regions_per_frame = Histogram(
            "bearwatch_regions_per_frame",
            "Regions of a frame the model looked at (its camera's view plan)",
            ["camera"],
            buckets=(1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 64),
            registry=r,
        )
        self.inference_seconds = Histogram(
            "bearwatch_inference_seconds",
            "ONNX Runtime time per batch",
            buckets=INFERENCE_BUCKETS,
            registry=r,
        )
        self.latency_seconds = Histogram(
            "bearwatch_capture_to_decision_seconds",
            "Time from reading a frame to its decision",
            ["camera"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.camera_up = Gauge(
            "bearwatch_camera_up", "1 while the camera delivers frames", ["camera"], registry=r
        )
        self.camera_status = Gauge(
            "bearwatch_camera_status",
            "1 for the camera's current status",
            ["camera", "status"],
            registry=r,
        )
        self.frame_age = Gauge(
            "bearwatch_camera_frame_age_seconds",
            "How stale the last sampled live frame was when read (lag behind the freshest frame)",
            ["camera"],
            registry=r,
        )
        self.reconnects = Counter(
            "bearwatch_camera_reconnects_total", "Reconnection attempts", ["camera"], registry=r
        )
        self.read_errors = Counter(
            "bearwatch_camera_read_errors_total",
            "Failed or corrupt frame reads",
            ["camera"],
            registry=r,
        )
        self.events = Counter(
            "bearwatch_events_total",
            "Decision events by kind (start, end; suppressed: a start like a rejected alert)",
            ["camera", "label", "kind"],
            registry=r,
        )
        self.store_failures = Counter(
            "bearwatch_store_write_failures_total",
            "Review-store writes that failed (each retry counts)",
            registry=r,
        )
        self.store_healthy = Gauge("bearwatch_store_healthy", "0 after a write gave up", registry=r)
        self.store_healthy.set(1)
        self.store_writer_queue = Gauge(
            "bearwatch_store_writer_queue",
            "Store writes waiting for the store-writer thread",
            registry=r,
        )
        self.store_writer_overflows = Counter(
            "bearwatch_store_writer_overflows",
            "Store writes that found the writer's queue full and were spilled on the caller's thread",
            registry=r,
        )
        self.store_size = Gauge(
            "bearwatch_store_size_bytes",
            "The review store's size: the SQLite file and WAL, or the PostgreSQL database",
            registry=r,
        )
        self.snapshots_skipped = Counter(
            "bearwatch_store_snapshots_skipped_total",
            "Event snapshots not written because the disk beside the store is (nearly) full",
            registry=r,
        )
        self.retention_removed = Counter(
            "bearwatch_retention_removed_total",
            "Rows (or snapshots) the retention worker removed, by kind",
            ["kind"],
            registry=r,
        )
        self.worker_restarts = Counter(
            "bearwatch_worker_restarts_total",
            "Workers restarted by the supervisor",
            ["worker"],
            registry=r,
        )
        self.drift_state = Gauge(
            "bearwatch_camera_drift_state",
            "1 for the camera's drift state",
            ["camera", "state"],
            registry=r,
        )
        self.drift_statistic = Gauge(
            "bearwatch_drift_statistic",
            "Tail KS distance of a signal from the training reference (0 = inside)",
            ["camera", "signal"],
            registry=r,
        )
        self.notifications = Counter(
            "bearwatch_notifications_total",
            "Notification attempts by channel and result (sent, failed; error: the outbox could not be read)",
            ["channel", "result"],
            registry=r,
        )
        self.audit_samples = Counter(
            "bearwatch_audit_samples_total",
            "Non-alert frames kept for labelling",
            ["camera", "reason"],
            registry=r,
        )
        self.batch_errors = Counter(
            "bearwatch_batch_errors_total",
            "Inference batches that failed and were skipped",
            registry=r,
        )
        # Capacity: offered = processed + dropped counts only frames that were read;
        # these say how many the source (or the box reading it) never delivered.
        self.frames_missed = Counter(
            "bearwatch_frames_missed",
            "Frames the camera's fps asked for that the source never delivered (read too slowly)",
            ["camera"],
            registry=r,
        )
        self.read_fps = Gauge(
            "bearwatch_camera_read_fps",
            "Sampled frames per second over the last seconds (compare bearwatch_camera_target_fps)",
            ["camera"],
            registry=r,
        )
        self.target_fps = Gauge(
            "bearwatch_camera_target_fps", "The camera's configured fps", ["camera"], registry=r
        )
        self.replay_speed = Gauge(
            "bearwatch_camera_replay_speed",
            "File cameras in real-time pacing: video seconds played per wall second (1.0 = real time)",
            ["camera"],
            registry=r,
        )

    def set_camera_status(self, camera: str, status: str) -> None:
        for s in CAMERA_STATUSES:
            self.camera_status.labels(camera=camera, status=s).set(1 if s == status else 0)
        self.camera_up.labels(camera=camera).set(1 if status == "online" else 0)

    def render(self) -> bytes:
        """The text exposition format for ``/metrics``."""
        return generate_latest(self.registry)

    def counter_totals(self, name: str, by: str | None = None) -> dict[str, float]:
        """Sum a counter's samples, grouped by one label (or all together under ``""``).

        Args:
            name: the counter's name without ``_total`` (e.g. ``bearwatch_frames_dropped``).
            by: the label to group by, e.g. ``reason``.
        """
        out: dict[str, float] = {}
        for family in self.registry.collect():
            if family.name != name:
                continue
            for sample in family.samples:
                if sample.name.endswith("_total"):
                    key = sample.labels.get(by, "") if by else ""
                    out[key] = out.get(key, 0.0) + sample.value
        return out
