"""Shared fixtures: a real ONNX model exported through bearwatch's own export, and thread-leak checks."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from tests.media import scene
from tests.postgres import PostgresServer

COLOR_LABELS = ("bear", "empty", "person")
COLOR_INPUT_HW = (64, 64)


def _build_color_net():  # type: ignore[no-untyped-def]
    """A hand-weighted network whose answers are predictable on ``tests.media`` scenes.

    It undoes the ImageNet normalisation, averages each channel, and scores
    ``bear`` by how much red exceeds green and ``person`` by how much blue
    exceeds green; ``empty`` is the constant alternative. Exporting it runs the
    real export path (wrapper, opset, metadata), so monitor tests exercise the
    same artifact contract as a trained model.
    """
    import torch
    from torch import nn

    class ColorNet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1))
            self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1))
            self.head = nn.Linear(3, 3)
            with torch.no_grad():
                self.head.weight.copy_(
                    torch.tensor([[20.0, -20.0, 0.0], [0.0, 0.0, 0.0], [0.0, -20.0, 20.0]])
                )
                self.head.bias.copy_(torch.tensor([-3.0, 0.0, -3.0]))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            rgb = (x * self.std + self.mean).mean(dim=(2, 3))
            return self.head(rgb)

    return ColorNet()


@pytest.fixture(scope="session")
def color_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real ``model.onnx`` (labels bear/empty/person, 64x64) with reference statistics."""
    import cv2

    from monitor.model.image_stats import reference_from_images
    from monitor.model.metadata import ModelMetadata
    from monitor.model.preprocess import frame_to_input
    from monitor.model.reference import reference_confidence
    from training.export import export_onnx

    images = [
        frame_to_input(cv2.cvtColor(scene(kind, seed=i), cv2.COLOR_BGR2RGB), COLOR_INPUT_HW, "crop")
        for i, kind in enumerate(["empty", "bear", "person"] * 20)
    ]
    reference = dict(reference_from_images(images))
    reference["confidence"] = reference_confidence(np.full((60, 3), [0.9, 0.05, 0.05]))
    meta = ModelMetadata(
        labels=COLOR_LABELS,
        input_hw=COLOR_INPUT_HW,
        model_version="color-test-1",
        arch="colornet",
        metrics={"accuracy": 1.0},
        reference=reference,
    )
    return export_onnx(_build_color_net(), meta, tmp_path_factory.mktemp("model") / "model.onnx")


def _build_texture_color_net():  # type: ignore[no-untyped-def]
    """``ColorNet``'s answers, with a 12-value pooled feature vector worth scoring.

    The features are each channel's mean, standard deviation and mean absolute
    horizontal and vertical gradient: enough for the feature score to tell
    ``tests.media`` scenes (smooth gradients, flat blobs) from photographs. The
    head reads only the means, with ColorNet's weights, so its labels are the
    colour model's; it is one ``nn.Linear`` like a fastai head, which is what
    the export's graph surgery looks for.
    """
    import torch
    from torch import nn

    class TextureColorNet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1))
            self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1))
            self.head = nn.Linear(12, 3)
            weight = torch.zeros(3, 12)
            weight[:, :3] = torch.tensor([[20.0, -20.0, 0.0], [0.0, 0.0, 0.0], [0.0, -20.0, 20.0]])
            with torch.no_grad():
                self.head.weight.copy_(weight)
                self.head.bias.copy_(torch.tensor([-3.0, 0.0, -3.0]))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            rgb = x * self.std + self.mean
            dx = (rgb[:, :, :, 1:] - rgb[:, :, :, :-1]).abs().mean(dim=(2, 3))
            dy = (rgb[:, :, 1:, :] - rgb[:, :, :-1, :]).abs().mean(dim=(2, 3))
            feats = torch.cat([rgb.mean(dim=(2, 3)), rgb.std(dim=(2, 3)), 4 * dx, 4 * dy], dim=1)
            return self.head(feats)

    return TextureColorNet()


def scene_inputs(n: int, seed0: int = 0) -> list[np.ndarray]:
    """Model inputs of ``tests.media`` scenes, day and IR night, every kind and position.

    The frames go through a real video file and back, as the test clips'
    frames do: raw scenes are so alike that a threshold calibrated on them
    would call every compressed video frame unfamiliar. Half are centre
    crops, half the whole frame letterboxed — the two ways the runtime's view
    plans show a frame to the model.
    """
    import tempfile

    import av

    from monitor.capture.picture import AvPicture
    from monitor.model.preprocess import crop_box, regions_to_inputs
    from tests.media import night, write_frames

    rng = np.random.default_rng(seed0)
    frames = []
    for i in range(n):
        kind = ("empty", "bear", "person")[i % 3]
        bgr = scene(kind, seed=seed0 + i, x_frac=float(rng.uniform(0.05, 0.6)))
        frames.append(night(bgr, seed=seed0 + i) if rng.random() < 0.3 else bgr)
    with (
        tempfile.TemporaryDirectory() as tmp,
        av.open(str(write_frames(Path(tmp) / "scenes.avi", frames))) as container,
    ):
        out = []
        for frame in container.decode(video=0):
            if len(out) == n:
                break
            # As the capture worker does for a whole-frame plan: PyAV converts the
            # frame once, just wide enough for the centre square at input size.
            picture = AvPicture(frame)
            h, w = picture.hw
            bgr = picture.bgr(round(w * max(COLOR_INPUT_HW) / min(h, w)))
            bh, bw = bgr.shape[:2]
            full, centre = regions_to_inputs(
                bgr, [(0, 0, bw, bh), crop_box(bw, bh, *COLOR_INPUT_HW[::-1])], COLOR_INPUT_HW
            )
            out.append(centre if len(out) % 2 else full)
        assert len(out) == n, "the scenes clip ended early"
    return out


@pytest.fixture(scope="session")
def ood_color_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The colour model with a ``features`` output and embedded feature statistics (kNN, 95 %)."""
    from monitor.model.image_stats import reference_from_images
    from monitor.model.metadata import ModelMetadata
    from monitor.model.reference import reference_confidence
    from training.export import export_onnx
    from training.ood import embed_stats

    train, valid = scene_inputs(600, seed0=0), scene_inputs(200, seed0=10_000)
    reference = dict(reference_from_images(train))
    reference["confidence"] = reference_confidence(np.full((60, 3), [0.9, 0.05, 0.05]))
    meta = ModelMetadata(
        labels=COLOR_LABELS,
        input_hw=COLOR_INPUT_HW,
        model_version="texture-color-test-1",
        arch="texturecolornet",
        reference=reference,
    )
    path = export_onnx(
        _build_texture_color_net(), meta, tmp_path_factory.mktemp("ood") / "model.onnx"
    )
    embed_stats(path, train, valid)
    return path


@pytest.fixture(autouse=True)
def no_thread_leaks() -> Iterator[None]:
    """Fail a test that leaves a bearwatch thread running after it returns."""
    before = set(threading.enumerate())
    yield
    leaked = [t for t in threading.enumerate() if t not in before and t.is_alive() and not t.daemon]
    for t in leaked:
        t.join(timeout=2.0)
    still = [t.name for t in leaked if t.is_alive()]
    assert not still, f"threads left running: {still}"


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """One PostgreSQL server for the session (fails, does not skip, when it is not installed)."""
    server = PostgresServer().start()
    yield server
    server.stop()


@pytest.fixture
def pg_url(postgres: PostgresServer) -> str:
    """A fresh, empty PostgreSQL database for one test (its URL, with the password)."""
    return postgres.url(postgres.create_database())
