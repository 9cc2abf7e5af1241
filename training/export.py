"""Export a trained network to the one-file ONNX artifact the monitor runs.

The exported graph takes ``uint8`` RGB NHWC images at the model's size and does
the cast, the /255 scaling and the ImageNet normalisation itself (fastai keeps
``Normalize`` in the DataLoaders, not in ``learn.model``, so a bare export of
``learn.model`` would silently expect normalised float input). It ends in a
softmax, so the first output is class probabilities; the penultimate features
and the logits are exposed as two more outputs (``training.ood`` finds them
in the graph) for the out-of-domain score. Metadata rides in
``metadata_props`` (see ``monitor.model.metadata``).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import onnx
import torch
from torch import nn

from monitor.model.metadata import ModelMetadata
from training.ood import add_ood_outputs

OPSET = 18


class EdgeWrapper(nn.Module):
    """uint8 NHWC RGB → cast, scale, normalise → network → softmax."""

    mean: torch.Tensor
    std: torch.Tensor

    def __init__(
        self,
        net: nn.Module,
        mean: tuple[float, float, float],
        std: tuple[float, float, float],
    ) -> None:
        super().__init__()
        self.net = net
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.permute(0, 3, 1, 2).float() / 255.0
        x = (x - self.mean) / self.std
        return torch.softmax(self.net(x), dim=1)


def export_onnx(net: nn.Module, meta: ModelMetadata, out_path: str | Path) -> Path:
    """Export ``net`` (which takes normalised float NCHW) with preprocessing and metadata.

    The file is written to a temporary name beside ``out_path`` and renamed into
    place only when complete, so a crash never leaves a half-written model that
    looks finished.

    Args:
        net: the network, in any mode (it is put in eval mode on the CPU).
        meta: the metadata to embed; ``meta.mean``/``meta.std`` are baked into the graph.
        out_path: where the ``.onnx`` goes.

    Returns:
        The path written.
    """
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    wrapper = EdgeWrapper(net, meta.mean, meta.std).cpu().eval()
    h, w = meta.input_hw
    example = torch.zeros((2, h, w, 3), dtype=torch.uint8)
    fd, tmp_name = tempfile.mkstemp(suffix=".onnx.part", dir=out_path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        with torch.no_grad():
            torch.onnx.export(
                wrapper,
                (example,),
                os.fspath(tmp),
                input_names=["image"],
                output_names=["probs"],
                dynamic_shapes={"x": {0: torch.export.Dim("batch", min=1, max=4096)}},
                opset_version=OPSET,
                dynamo=True,
                # Weights inline: the artifact is one file, and a 2 GB model is not an edge model.
                external_data=False,
                verbose=False,
            )
        model = onnx.load(os.fspath(tmp), load_external_data=True)
        add_ood_outputs(model)
        for key, value in meta.to_props().items():
            entry = model.metadata_props.add()
            entry.key, entry.value = key, value
        model.producer_name = "bearwatch"
        onnx.checker.check_model(model)
        onnx.save(model, os.fspath(tmp))
        # mkstemp creates the file owner-only; a model is meant to be read by the service user.
        tmp.chmod(0o644)
        tmp.replace(out_path)
    finally:
        tmp.unlink(missing_ok=True)
    return out_path
