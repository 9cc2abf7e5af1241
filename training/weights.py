"""Pretrained weights without surprises offline: the hub cache, a local file, or a clear refusal.

torchvision would download ImageNet weights on first use and, without a
network, fail deep inside ``vision_learner`` with a long traceback (or hang on
a black-holed route). Here the weights are resolved before any model is built:
``--weights FILE`` is loaded and checked against the architecture, the default
looks in the torch hub cache first and tries one bounded download, and every
failure is one line naming the options.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable, Mapping
from pathlib import Path
from urllib.error import URLError

import torch
import torchvision
from torch import nn

from training.errors import TrainingError

logger = logging.getLogger(__name__)

DOWNLOAD_TIMEOUT_S = 20.0

StateDict = Mapping[str, torch.Tensor]


class WeightsError(TrainingError):
    """Pretrained weights were asked for and cannot be had."""


def arch_builder(arch: str) -> Callable[..., nn.Module]:
    """The torchvision builder for ``arch`` (the object fastai's ``model_meta`` is keyed by)."""
    return torchvision.models.get_model_builder(arch)


def hub_checkpoint(arch: str) -> tuple[str, Path]:
    """The URL of ``arch``'s default ImageNet weights and where torch hub caches them."""
    url = torchvision.models.get_model_weights(arch).DEFAULT.url
    return url, Path(torch.hub.get_dir()) / "checkpoints" / Path(url).name


def _offline_message(arch: str, cached: Path, reason: str) -> str:
    return (
        f"pretrained {arch} weights are not available ({reason}; looked for {cached}): "
        f"pass --weights FILE with a torchvision {arch} state dict (.pth), "
        "or --no-pretrained to train from random initialisation"
    )


def download_weights(arch: str) -> StateDict:
    """Load ``arch``'s ImageNet weights from the hub cache, downloading them only if absent.

    Raises:
        WeightsError: when they are not cached and the download fails.
    """
    url, cached = hub_checkpoint(arch)
    if cached.is_file():
        return read_weights_file(cached, arch)
    logger.info("%s weights are not in %s; trying to download %s", arch, cached.parent, url)
    previous = socket.getdefaulttimeout()
    # urllib has no overall timeout; a per-socket one turns a black-holed route into an error.
    socket.setdefaulttimeout(DOWNLOAD_TIMEOUT_S)
    try:
        state = torch.hub.load_state_dict_from_url(
            url, map_location="cpu", progress=True, check_hash=True
        )
    except (URLError, OSError, RuntimeError, ValueError) as exc:
        raise WeightsError(_offline_message(arch, cached, f"download failed: {exc}")) from exc
    finally:
        socket.setdefaulttimeout(previous)
    return state


def read_weights_file(path: Path, arch: str) -> StateDict:
    """Read a state dict file and check it fits ``arch``.

    Raises:
        WeightsError: when the file is unreadable, not a state dict, or for another architecture.
    """
    what_to_do = f"pass a torchvision {arch} state dict (.pth) or --no-pretrained"
    if not path.is_file():
        raise WeightsError(f"weights file {path} does not exist; {what_to_do}")
    try:
        # weights_only: a weights file from the internet must not run code on load.
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch.load raises many types for garbage (pickle, zip, runtime)
        raise WeightsError(
            f"cannot read weights file {path} ({type(exc).__name__}); {what_to_do}"
        ) from exc
    if (
        isinstance(state, Mapping)
        and "state_dict" in state
        and isinstance(state["state_dict"], Mapping)
    ):
        state = state["state_dict"]
    if not isinstance(state, Mapping) or not all(
        isinstance(v, torch.Tensor) for v in state.values()
    ):
        raise WeightsError(f"weights file {path} is not a state dict of tensors; {what_to_do}")
    check_fits(state, arch, path)
    return state


def check_fits(state: StateDict, arch: str, source: Path) -> None:
    """Raise a one-line error unless ``state`` has exactly ``arch``'s keys and shapes."""
    expected = arch_builder(arch)(weights=None).state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    reshaped = sorted(k for k in set(expected) & set(state) if expected[k].shape != state[k].shape)
    problems = [
        f"{len(keys)} {what} key(s), e.g. {keys[0]!r}"
        for keys, what in (
            (missing, "missing"),
            (unexpected, "unexpected"),
            (reshaped, "wrongly shaped"),
        )
        if keys
    ]
    if problems:
        raise WeightsError(
            f"weights file {source} does not fit {arch} ({'; '.join(problems)}); "
            f"pass a torchvision {arch} state dict (.pth), choose the matching --arch, or --no-pretrained"
        )


def resolve_weights(arch: str, pretrained: bool, weights_file: Path | None) -> StateDict | None:
    """The state dict to start the body from, or ``None`` for random initialisation.

    Raises:
        WeightsError: see :func:`read_weights_file` and :func:`download_weights`.
    """
    if weights_file is not None:
        return read_weights_file(weights_file, arch)
    if not pretrained:
        return None
    return download_weights(arch)
