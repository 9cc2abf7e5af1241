"""The YAML configuration: strict pydantic models, env-var secrets, errors that name the key path.

Each worker receives only its own sub-config. Relative paths (model, store,
file sources) are resolved against the config file's folder so a config works
from any working directory.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from monitor.config.base import ENV_REF, redact_url
from monitor.config.service import Config
from monitor.config.yaml_limits import load_yaml, read_config_text
from monitor.errors import ConfigError

# Keys whose values are secrets: an error about one names the key and the rule, never the value.
SECRET_KEYS = frozenset({"password", "password_hash", "token", "session_secret", "secret"})


def _substitute_env(
    node: Any, path: str, errors: list[str], substituted: set[str] | None = None
) -> Any:
    """Replace ``${NAME}`` in every string with the environment variable's value.

    Args:
        substituted: collects the key paths whose value came from the environment
            (secrets, by convention), so that errors never echo them.
    """
    if isinstance(node, dict):
        return {
            k: _substitute_env(v, f"{path}.{k}" if path else str(k), errors, substituted)
            for k, v in node.items()
        }
    if isinstance(node, list):
        return [_substitute_env(v, f"{path}[{i}]", errors, substituted) for i, v in enumerate(node)]
    if isinstance(node, str):
        if substituted is not None and ENV_REF.search(node):
            substituted.add(path)

        def repl(m: re.Match[str]) -> str:
            name = m.group(1)
            if name not in os.environ:
                errors.append(
                    f"{path}: environment variable {name} is not set (referenced as ${{{name}}})"
                )
                return ""
            return os.environ[name]

        return ENV_REF.sub(repl, node)
    return node


def _loc_to_path(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "(top level)"


def _model_at(loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """Walk the models along an error location to find the model that holds the key."""
    model: Any = Config
    for part in loc[:-1]:
        if isinstance(part, int):
            continue
        field = model.model_fields.get(part) if hasattr(model, "model_fields") else None
        if field is None:
            return None
        ann = field.annotation
        args = getattr(ann, "__args__", ())
        model = next(
            (a for a in (ann, *args) if isinstance(a, type) and issubclass(a, BaseModel)), None
        )
        if model is None:
            return None
    return model if isinstance(model, type) and issubclass(model, BaseModel) else None


def _format_error(err: Any, hidden: frozenset[str] | set[str] = frozenset()) -> str:
    """One line naming the key path and the rule; a secret's value (or one from the environment) is never shown."""
    loc = tuple(err["loc"])
    path = _loc_to_path(loc)
    if err["type"] == "extra_forbidden":
        owner = _model_at(loc)
        valid = sorted(owner.model_fields) if owner else []
        close = difflib.get_close_matches(str(loc[-1]), valid, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        return f"{path}: unknown key{hint} valid keys here: {', '.join(valid)}"
    msg = str(err["msg"]).removeprefix("Value error, ")
    if err["type"] == "missing":
        return f"{path}: required key is missing"
    got = err.get("input")
    if _is_secret(loc) or path in hidden:
        return f"{path}: {msg} (value not shown)"
    if isinstance(got, str):
        got = redact_url(got)
        if got in msg:
            got = None  # the message already shows the redacted form
    shown = "" if isinstance(got, dict | list) or got is None else f" (got {got!r})"
    return f"{path}: {msg}{shown}"


def _is_secret(loc: tuple[Any, ...]) -> bool:
    return any(isinstance(part, str) and part.lower() in SECRET_KEYS for part in loc)


def parse_config(data: Any, base_dir: Path | None = None) -> Config:
    """Validate an already-loaded YAML tree.

    Raises:
        ConfigError: listing every problem, one per line, each naming its key path.
    """
    if not isinstance(data, dict):
        raise ConfigError(
            "the config file must be a YAML mapping with at least `cameras` and `model`"
        )
    errors: list[str] = []
    substituted: set[str] = set()
    data = _substitute_env(data, "", errors, substituted)
    if errors:
        raise ConfigError("\n".join(errors))
    try:
        cfg = Config.model_validate(data)
    except ValidationError as exc:
        lines = (_format_error(e, substituted) for e in exc.errors(include_url=False))
        raise ConfigError("\n".join(lines)) from None
    return _resolve_paths(cfg, base_dir) if base_dir is not None else cfg


def _resolve_paths(cfg: Config, base: Path) -> Config:
    def fix(p: Path) -> Path:
        return p if p.is_absolute() else (base / p).resolve()

    cams = [
        c.model_copy(update={"source": str(fix(Path(c.source)))}) if c.kind == "file" else c
        for c in cfg.cameras
    ]
    candidate = cfg.candidate
    if candidate is not None:
        candidate = candidate.model_copy(update={"path": fix(candidate.path)})
    return cfg.model_copy(
        update={
            "candidate": candidate,
            "cameras": cams,
            "model": cfg.model.model_copy(update={"path": fix(cfg.model.path)}),
            "store": cfg.store.model_copy(
                update={"path": fix(cfg.store.path), "url": _fix_sqlite_url(cfg.store.url, fix)}
            ),
        }
    )


def _fix_sqlite_url(url: str | None, fix: Callable[[Path], Path]) -> str | None:
    """``sqlite:///relative.db`` is relative to the config file too."""
    if url is None or not url.startswith("sqlite:///"):
        return url
    return "sqlite:///" + str(fix(Path(url.removeprefix("sqlite:///"))))


def load_config(path: str | Path) -> Config:
    """Read and validate a YAML config file.

    Raises:
        ConfigError: when the file is missing, is not YAML, or does not validate.
    """
    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"config file {path} is a directory; pass the YAML file inside it")
    data = load_yaml(read_config_text(path), str(path))
    return parse_config(data, base_dir=path.resolve().parent)


def config_warnings(cfg: Config) -> list[str]:
    """Problems that do not stop the daemon (a camera will just be offline) but deserve a line."""
    notes = []
    if cfg.model.path.is_dir():
        notes.append(
            f"model.path: {cfg.model.path} is a directory, not a .onnx file "
            "(the daemon will refuse to start)"
        )
    elif not cfg.model.path.is_file():
        notes.append(
            f"model.path: {cfg.model.path} does not exist (the daemon will refuse to start)"
        )
    for i, cam in enumerate(cfg.cameras):
        if cam.kind == "file" and Path(cam.source).is_dir():
            notes.append(
                f"cameras[{i}].source: {cam.source} is a directory, not a video file; "
                f"camera {cam.id} will be offline"
            )
        elif cam.kind == "file" and not Path(cam.source).is_file():
            notes.append(
                f"cameras[{i}].source: file {cam.source} does not exist; camera {cam.id} will be offline"
            )
        if cam.kind != "file" and (cam.pacing != "realtime" or cam.loop):
            notes.append(
                f"cameras[{i}]: pacing/loop only apply to file sources; ignored for {cam.kind}"
            )
        unknown = [lbl for lbl in cam.decision.alert_labels if not lbl]
        if unknown:
            notes.append(f"cameras[{i}].decision.alert_labels: empty label")
    return notes
