"""ONNX Runtime classifier: load and verify a model file, warm it up, classify batches."""

from __future__ import annotations

import logging
import os
import time
from importlib import metadata
from pathlib import Path

import numpy as np
import onnxruntime as ort
from threadpoolctl import threadpool_limits

from monitor.errors import ModelError
from monitor.model.features import FeatureStats
from monitor.model.metadata import ModelMetadata

logger = logging.getLogger(__name__)

PROVIDER_CHOICES = ("cpu", "cuda", "openvino", "auto")
EXECUTION_PROVIDERS = {
    "cpu": "CPUExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "openvino": "OpenVINOExecutionProvider",
}
AUTO_TRIAL_RUNS = 5  # batches timed per candidate provider when ``auto`` has a choice
AUTO_MAX_DIFF = 0.02  # the parity tolerance: a provider must reproduce the CPU's probabilities

Provider = str | tuple[str, dict[str, str]]


def provider_chain(name: str, threads: int = 0) -> list[Provider]:
    """The ONNX Runtime provider list for one of our names, always ending on the CPU."""
    if name == "cpu":
        return ["CPUExecutionProvider"]
    if name == "openvino":
        options = {"device_type": "CPU"}
        if threads > 0:
            options["num_of_threads"] = str(threads)
        return [("OpenVINOExecutionProvider", options), "CPUExecutionProvider"]
    return [EXECUTION_PROVIDERS[name], "CPUExecutionProvider"]


FEATURES_OUTPUT = "features"
LOGITS_OUTPUT = "logits"


def select_providers(requested: str) -> list[str]:
    """The ONNX Runtime provider names a session for ``requested`` tries first (no timing)."""
    first = provider_candidates(requested)[0]
    return [EXECUTION_PROVIDERS[first]] + (["CPUExecutionProvider"] if first != "cpu" else [])


def provider_candidates(requested: str) -> list[str]:
    """Which of ``cpu|cuda|openvino`` to try for ``requested``, fastest first (``auto``: all installed).

    A named accelerator that is not installed falls back to the CPU with one
    warning rather than refusing to start: a camera box that lost its GPU driver,
    or was installed without OpenVINO, should keep watching, slower.
    """
    if requested not in PROVIDER_CHOICES:
        raise ValueError(f"providers must be one of {PROVIDER_CHOICES}, got {requested!r}")
    available = ort.get_available_providers()
    if requested == "auto":
        return [n for n in ("cuda", "openvino") if EXECUTION_PROVIDERS[n] in available] + ["cpu"]
    if requested != "cpu" and EXECUTION_PROVIDERS[requested] not in available:
        hint = (
            " (install the openvino requirements: onnxruntime-openvino replaces onnxruntime)"
            if requested == "openvino"
            else ""
        )
        logger.warning(
            "%s was requested but ONNX Runtime has no %s here (available: %s)%s; running on the CPU",
            {"cuda": "CUDA", "openvino": "OpenVINO"}[requested],
            EXECUTION_PROVIDERS[requested],
            ", ".join(available),
            hint,
        )
        return ["cpu"]
    return [requested] if requested == "cpu" else [requested, "cpu"]


def _both_runtimes_installed() -> bool:
    """``onnxruntime`` and ``onnxruntime-openvino`` both own the ``onnxruntime`` module."""
    found = set()
    for dist in ("onnxruntime", "onnxruntime-openvino", "onnxruntime-gpu"):
        try:
            metadata.distribution(dist)
            found.add(dist)
        except metadata.PackageNotFoundError:
            continue
    return len(found) > 1


_collision_checked: list[bool] = []  # checked once per process, at the first model load


def _warn_on_collision() -> None:
    if _collision_checked:
        return
    _collision_checked.append(True)
    if _both_runtimes_installed():
        logger.warning(
            "more than one ONNX Runtime distribution is installed in this environment; they "
            "overwrite each other's onnxruntime module (see deploy/requirements-openvino.txt)"
        )


class OnnxClassifier:
    """A verified, warmed-up ONNX Runtime session for one bearwatch model.

    Args:
        path: the ``.onnx`` file.
        providers: ``cpu``, ``cuda``, ``openvino`` or ``auto`` (the fastest installed one,
            measured on this model at load).
        threads: intra-op threads (0 lets ONNX Runtime choose).
        warmup_batch: the largest batch to warm up with (the first runs allocate
            memory and pick kernels; doing it at load keeps that cost out of the
            first real frames' latency).

    Raises:
        ModelError: when the file is missing, corrupt, or its metadata does not
            match the graph.
    """

    def __init__(
        self, path: str | Path, providers: str = "cpu", threads: int = 0, warmup_batch: int = 1
    ) -> None:
        self.path = Path(path)
        if self.path.is_dir():
            raise ModelError(
                f"model path {self.path} is a directory; give the .onnx file inside it"
            )
        if not self.path.is_file():
            raise ModelError(f"model file {self.path} does not exist")
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        opts.log_severity_level = 3
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # Batches come a few times a second, not back to back: ORT's worker
        # threads would otherwise spin between them and burn the cores the
        # cameras' decoders need (measured: ~40 % of the replay's CPU at 2 fps).
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        opts.add_session_config_entry("session.inter_op.allow_spinning", "0")
        _warn_on_collision()
        candidates = provider_candidates(providers)
        self.session = self._load(opts, candidates[0], threads)
        self.meta = ModelMetadata.from_props(
            self.session.get_modelmeta().custom_metadata_map, source=str(self.path)
        )
        self._input_name = self._check_graph()
        if providers == "auto" and len(candidates) > 1:
            self.session = self._fastest(opts, candidates, threads, max(1, warmup_batch))
        self._outputs = [o.name for o in self.session.get_outputs()]
        self.feature_stats = self._check_features()
        if self.feature_stats is not None:
            # The feature score is a few small matrix products per batch. Left to
            # itself OpenBLAS wakes a thread per core for them, which then fight
            # ONNX Runtime's own pool for the same cores: measured on the demo
            # model that made the score cost 25-100 % of the forward pass instead
            # of ~4 %. One BLAS thread is plenty for the runtime's numpy work.
            threadpool_limits(limits=1, user_api="blas")
        self._nan_warned = False
        # Seconds spent in the network and in the feature score, for the cost comparison.
        self.model_seconds = self.score_seconds = 0.0
        self.providers = self.session.get_providers()
        for batch in sorted({1, max(1, warmup_batch)}):
            self.predict(np.zeros((batch, *self.meta.input_hw, 3), dtype=np.uint8))

    def _load(self, opts: ort.SessionOptions, name: str, threads: int) -> ort.InferenceSession:
        try:
            return ort.InferenceSession(
                os.fspath(self.path), sess_options=opts, providers=provider_chain(name, threads)
            )
        except Exception as exc:  # ORT raises its own exception types for corrupt files
            raise ModelError(f"{self.path} is not a loadable ONNX model: {exc}") from exc

    def _fastest(
        self, opts: ort.SessionOptions, names: list[str], threads: int, batch: int
    ) -> ort.InferenceSession:
        """``auto`` with a choice: keep the fastest installed provider that gives the CPU's answers.

        Which provider wins depends on the model and the CPU (OpenVINO beat ORT's
        CPU provider 1.3–1.7× on the bundled model here, but a tiny graph can lose
        to its overhead), so it is measured, once, at load. A provider whose
        probabilities differ from the CPU provider's by more than
        ``AUTO_MAX_DIFF`` on a fixed batch is not eligible: measured here,
        OpenVINO runs an INT8 (QDQ) export with a different arithmetic (top-1
        flips on real frames), while its FP32 results match to 4e-7.
        """
        x = np.random.default_rng(0).integers(
            0, 256, size=(batch, *self.meta.input_hw, 3), dtype=np.uint8
        )
        sessions = {
            name: self.session if name == names[0] else self._load(opts, name, threads)
            for name in names
        }
        ref = sessions["cpu"].run(None, {self._input_name: x})[0]
        best: tuple[float, str] | None = None
        for name, session in sessions.items():
            probs = session.run(None, {self._input_name: x})[0]  # also compiles and allocates
            diff = float(np.abs(np.asarray(probs) - ref).max())
            if diff > AUTO_MAX_DIFF:
                logger.warning(
                    "providers auto: %s differs from the CPU provider by %.3f on %s; not using it",
                    name,
                    diff,
                    self.path.name,
                )
                continue
            started = time.perf_counter()
            for _ in range(AUTO_TRIAL_RUNS):
                session.run(None, {self._input_name: x})
            took = time.perf_counter() - started
            if best is None or took < best[0]:
                best = (took, name)
        assert best is not None  # the CPU provider always qualifies
        logger.info("providers auto: %s is the fastest here for %s", best[1], self.path.name)
        return sessions[best[1]]

    @property
    def labels(self) -> tuple[str, ...]:
        return self.meta.labels

    @property
    def input_hw(self) -> tuple[int, int]:
        return self.meta.input_hw

    def _check_graph(self) -> str:
        inputs, outputs = self.session.get_inputs(), self.session.get_outputs()
        if len(inputs) != 1 or len(outputs) < 1:
            raise ModelError(
                f"{self.path}: expected one input and an output, got {len(inputs)} inputs"
            )
        inp, out = inputs[0], outputs[0]
        if inp.type != "tensor(uint8)":
            raise ModelError(f"{self.path}: input must be uint8 RGB NHWC, graph takes {inp.type}")
        shape = list(inp.shape)
        h, w = self.meta.input_hw
        if len(shape) != 4 or shape[1:] != [h, w, 3]:
            raise ModelError(
                f"{self.path}: graph input shape {shape} does not match metadata input size "
                f"[N, {h}, {w}, 3]"
            )
        n_out = out.shape[-1] if out.shape else None
        if isinstance(n_out, int) and n_out != len(self.meta.labels):
            raise ModelError(
                f"{self.path}: graph outputs {n_out} classes but metadata lists "
                f"{len(self.meta.labels)} labels {list(self.meta.labels)}"
            )
        return str(inp.name)

    def _check_features(self) -> FeatureStats | None:
        """The feature statistics the run-time OOD score uses, or None (with one warning saying why).

        A features output of another width than the statistics means the two
        were not made for each other: that refuses the start, because every
        score it gave would be meaningless.
        """
        outputs = {o.name: o for o in self.session.get_outputs()}
        stats = self.meta.feature_stats
        has_output = FEATURES_OUTPUT in outputs
        if has_output and stats is not None:
            # Run the graph once rather than trust its declared shape, which
            # may be symbolic: a mismatch found here refuses the start instead
            # of failing every batch later.
            probe = np.zeros((1, *self.meta.input_hw, 3), dtype=np.uint8)
            (features,) = self.session.run([FEATURES_OUTPUT], {self._input_name: probe})
            width = features.shape[-1] if np.ndim(features) == 2 else np.shape(features)
            if width != stats.dim:
                raise ModelError(
                    f"{self.path}: the features output has {width} values but "
                    f"bearwatch.feature_stats is for {stats.dim}; recalibrate with `bearwatch ood-calibrate`"
                )
            return stats
        if has_output:
            why = "has a features output but no bearwatch.feature_stats"
        elif stats is not None:
            why = "has bearwatch.feature_stats but no features output"
        else:
            why = "was exported without features and feature statistics"
        logger.warning(
            "model %s %s: no feature-space out-of-domain score, only image statistics and "
            "confidence (add them with `bearwatch ood-calibrate`)",
            self.path,
            why,
        )
        return None

    def classify(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """Classify a batch and score how unfamiliar each frame is to the model.

        Returns:
            float32 (N, C) probabilities, and (N,) out-of-domain scores in units
            of the calibrated threshold (> 1.0: unfamiliar; NaN: unknown because
            the features were not finite) — or None when the model has no
            feature statistics.
        """
        if self.feature_stats is None:
            return self.predict(batch), None
        t0 = time.perf_counter()
        probs, features = self.session.run(
            [self._outputs[0], FEATURES_OUTPUT],
            {self._input_name: batch},
        )
        t1 = time.perf_counter()
        try:
            scores = self.feature_stats.scores(np.asarray(features, dtype=np.float32))
        except ValueError as exc:
            # Checked at load, so this should not happen; if it does, the frames
            # are still classified and the score is switched off, once, loudly.
            logger.warning("model %s: feature score disabled: %s", self.path, exc)
            self.feature_stats = None
            return self._checked(probs), None
        self.model_seconds += t1 - t0
        self.score_seconds += time.perf_counter() - t1
        if not self._nan_warned and np.isnan(scores).any():
            self._nan_warned = True
            logger.warning(
                "model %s produced non-finite features; those frames are scored as unknown",
                self.path,
            )
        return self._checked(probs), scores

    def predict(self, batch: np.ndarray) -> np.ndarray:
        """Classify a batch of preprocessed frames.

        Args:
            batch: ``uint8`` array (N, H, W, 3) in RGB order.

        Returns:
            float32 (N, C) class probabilities.
        """
        (probs,) = self.session.run(self._outputs[:1], {self._input_name: batch})
        return self._checked(probs)

    def _checked(self, probs: np.ndarray) -> np.ndarray:
        out = np.asarray(probs, dtype=np.float32)
        if out.ndim != 2 or out.shape[1] != len(self.meta.labels):
            raise ModelError(
                f"{self.path}: output shape {out.shape} does not match {len(self.meta.labels)} labels"
            )
        return out
