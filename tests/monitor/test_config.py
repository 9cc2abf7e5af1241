"""Config validation: a corpus of broken configs, each with the key path and fix in the message."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from monitor.config import load_config, parse_config, redact_url, source_kind
from monitor.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]


def base() -> dict[str, Any]:
    return {
        "model": {"path": "m.onnx"},
        "cameras": [{"id": "gate", "source": "rtsp://127.0.0.1/x"}],
    }


def with_(path: str, value: Any) -> dict[str, Any]:
    cfg = base()
    node: Any = cfg
    keys = path.split(".")
    for k in keys[:-1]:
        node = node[int(k)] if k.isdigit() else node.setdefault(k, {})
    node[keys[-1]] = value
    return cfg


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (with_("cameras.0.fsp", 2), "cameras[0].fsp: unknown key; did you mean 'fps'?"),
        (with_("modle", {}), "modle: unknown key; did you mean 'model'?"),
        (with_("cameras.0.fps", -1), "cameras[0].fps: Input should be greater than 0"),
        (with_("cameras.0.fps", "fast"), "cameras[0].fps: Input should be a valid number"),
        (with_("cameras.0.id", "Gate 1"), "cameras[0].id: String should match pattern"),
        (with_("cameras.0.source", "ftp://host/x"), "cameras[0].source: unknown URL scheme 'ftp'"),
        (
            with_("cameras.0.mode", "live"),
            "cameras[0].mode: Input should be 'shadow', 'review' or 'active'",
        ),
        (
            with_("cameras.0.decode", "fast"),
            "cameras[0].decode: Input should be 'all', 'keyframes' or 'auto'",
        ),
        (
            with_("cameras.0.hwaccel", "metal"),
            "cameras[0].hwaccel: Input should be 'none', 'vaapi', 'cuda' or 'qsv'",
        ),
        (
            with_("cameras.0.decision", {"window": 2, "min_hits": 3}),
            "min_hits (3) cannot exceed window (2)",
        ),
        (
            with_("cameras.0.decision", {"threshold": 0.5, "release_threshold": 0.9}),
            "must not exceed threshold",
        ),
        (
            with_("batching.max_batch", 0),
            "batching.max_batch: Input should be greater than or equal to 1",
        ),
        (
            with_("model.providers", "tpu"),
            "model.providers: Input should be 'cpu', 'cuda', 'openvino' or 'auto'",
        ),
        (with_("web.port", 70000), "web.port: Input should be less than or equal to 65535"),
        ({"cameras": [], "model": {"path": "m"}}, "cameras: List should have at least 1 item"),
        ({"cameras": [{"id": "a", "source": "0"}]}, "model: required key is missing"),
        (
            {
                "model": {"path": "m"},
                "cameras": [{"id": "a", "source": "0"}, {"id": "a", "source": "1"}],
            },
            "camera id 'a' is used twice",
        ),
        ([1, 2], "must be a YAML mapping"),
        (
            with_("cameras.0.view", {"plan": "sahi"}),
            "cameras[0].view.plan: Input should be 'auto', 'full', 'tiles' or 'motion'",
        ),
        (
            with_("cameras.0.view", {"tiles": {"overlap": 1.0}}),
            "cameras[0].view.tiles.overlap: Input should be less than 1",
        ),
        (
            with_("cameras.0.view", {"tiles": {"rows": 2}}),
            "cameras[0].view.tiles: rows and cols go together",
        ),
        (
            with_("cameras.0.view", {"zones": [{"name": "road", "polygon": []}]}),
            "cameras[0].view.zones[0].polygon: a polygon needs at least 3 points, got 0",
        ),
        (
            with_(
                "cameras.0.view",
                {"zones": [{"name": "yard", "polygon": [[0.5, 0.5], [1.2, 0.5], [0.9, 0.9]]}]},
            ),
            "cameras[0].view.zones[0].polygon: point 1 (1.2, 0.5) is outside the frame",
        ),
        (
            with_(
                "cameras.0.view",
                {
                    "zones": [
                        {
                            "name": "a",
                            "polygon": [[0, 0], [1, 0], [1, 1]],
                            "kind": "exclude",
                            "threshold": 0.5,
                        }
                    ]
                },
            ),  # fmt: skip
            "an exclude zone cannot have a threshold",
        ),
    ],
)
def test_broken_configs_name_the_key(data: Any, expected: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_config(data)
    assert expected in str(err.value)


def test_all_problems_are_reported_at_once() -> None:
    data = with_("cameras.0.fps", -1)
    data["batching"] = {"max_batch": 0}
    with pytest.raises(ConfigError) as err:
        parse_config(data)
    assert len(str(err.value).splitlines()) == 2


def test_env_references_are_resolved_and_missing_ones_named(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CAM_PW", "s3cret")
    cfg = parse_config(with_("cameras.0.source", "rtsp://admin:${CAM_PW}@10.0.0.1/live"))
    assert cfg.cameras[0].source == "rtsp://admin:s3cret@10.0.0.1/live"
    assert cfg.cameras[0].safe_source == "rtsp://admin:***@10.0.0.1/live"
    monkeypatch.delenv("CAM_PW")
    with pytest.raises(
        ConfigError, match=r"cameras\[0\].source: environment variable CAM_PW is not set"
    ):
        parse_config(with_("cameras.0.source", "rtsp://admin:${CAM_PW}@10.0.0.1/live"))


def test_a_password_never_appears_in_an_error() -> None:
    data = with_("cameras.0.source", "bogus://admin:hunter2@10.0.0.1/live")
    with pytest.raises(ConfigError) as err:
        parse_config(data)
    assert "hunter2" not in str(err.value)


@pytest.mark.parametrize(
    ("source", "kind"),
    [
        ("rtsp://h/x", "rtsp"),
        ("rtsps://h/x", "rtsp"),
        ("http://h/mjpeg", "http"),
        ("https://h/mjpeg", "http"),
        ("0", "webcam"),
        ("/dev/video2", "webcam"),
        ("clips/a.mp4", "file"),
        ("/abs/b.mkv", "file"),
    ],
)
def test_source_kinds(source: str, kind: str) -> None:
    assert source_kind(source) == kind


@pytest.mark.parametrize(
    ("url", "safe"),
    [
        ("rtsp://u:p@h:554/s", "rtsp://u:***@h:554/s"),
        ("rtsp://u@h/s", "rtsp://u@h/s"),
        ("http://h/s?token=abc&x=1", "http://h/s?token=***&x=1"),
        ("/dev/video0", "/dev/video0"),
    ],
)
def test_redact_url(url: str, safe: str) -> None:
    assert redact_url(url) == safe


def test_relative_paths_resolve_against_the_config_file(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    cfg_file = tmp_path / "sub" / "c.yaml"
    cfg_file.write_text(yaml.safe_dump(with_("cameras.0.source", "../v.mp4")))
    cfg = load_config(cfg_file)
    assert cfg.model.path == tmp_path / "sub" / "m.onnx"
    assert cfg.cameras[0].source == str(tmp_path / "v.mp4")


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "monitor", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=full_env,
    )


@pytest.mark.parametrize("name", ["demo.yaml", "example.yaml"])
def test_shipped_configs_pass_check_config(name: str) -> None:
    proc = run_cli(
        "check-config", str(REPO / "deploy" / name), env={"CAM_PASSWORD": "pw-never-shown"}
    )
    assert proc.returncode == 0, proc.stderr
    assert "OK" in proc.stdout
    assert "pw-never-shown" not in proc.stdout + proc.stderr


def test_check_config_exits_2_with_key_paths(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: {path: m.onnx}\ncameras:\n  - {id: a, source: '0', fsp: 3}\n")
    proc = run_cli("check-config", str(bad))
    assert proc.returncode == 2
    assert "cameras[0].fsp: unknown key" in proc.stderr


@pytest.mark.parametrize(
    ("text", "expected"),
    [("cameras: [\n", "is not valid YAML"), (None, "cannot read config file")],
)
def test_unreadable_config(tmp_path: Path, text: str | None, expected: str) -> None:
    path = tmp_path / "c.yaml"
    if text is not None:
        path.write_text(text)
    proc = run_cli("check-config", str(path))
    assert proc.returncode == 2
    assert expected in proc.stderr
