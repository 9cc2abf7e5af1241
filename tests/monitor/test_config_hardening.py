"""Regression tests from the hardening campaign (issue 15): secrets in URLs and errors, hostile YAML, bad paths."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from monitor.config import load_config, parse_config, redact_url
from monitor.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]
SECRET = "Hunter2-s3cret-Value"


def base(**camera: Any) -> dict[str, Any]:
    return {
        "model": {"path": "m.onnx"},
        "cameras": [{"id": "gate", "source": "rtsp://127.0.0.1/x", **camera}],
    }


@pytest.mark.parametrize(
    "url",
    [
        f"rtsp://admin:{SECRET}/x@cam.local:554/stream",
        f"rtsp://admin:{SECRET}#x@cam.local/stream",
        f"rtsp://admin:{SECRET}?x@cam.local/stream",
        f"rtsp://admin:a@{SECRET}@cam.local/stream",
        f"rtsp://admin:{SECRET}/a?b#c@cam.local/stream?x=1",
        f"http://cam.local/video?user=a&password={SECRET}",
        f"http://cam.local/video?token={SECRET}#frag",
    ],
)
def test_redaction_hides_passwords_with_unencoded_reserved_characters(url: str) -> None:
    """Bug: a camera password holding an unencoded '/', '#' or '?' defeated the redaction (urlsplit ended the host there)."""
    shown = redact_url(url)
    assert SECRET not in shown
    assert SECRET[:6] not in shown


def test_url_with_unencoded_reserved_password_is_refused_showing_only_the_redacted_form() -> None:
    """Bug: such a URL passed check-config and leaked in every reconnect line; now refused, redacted, with the fix."""
    with pytest.raises(ConfigError) as err:
        parse_config(base(source=f"rtsp://admin:{SECRET}/x@cam.local/stream"))
    text = str(err.value)
    assert SECRET not in text and SECRET[:6] not in text
    assert "cameras[0].source" in text and "percent-encode" in text
    assert len(text.splitlines()) == 1


@pytest.mark.parametrize("url", ["rtsp:///cam", "rtsp://", "http://:8080/x", "rtsp://u:p@/x"])
def test_urls_without_a_host_are_refused(url: str) -> None:
    """Bug: ``rtsp:///cam`` and ``rtsp://`` passed check-config."""
    with pytest.raises(ConfigError, match=r"cameras\[0\].source: .*has no host"):
        parse_config(base(source=url))


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (f"postgresql://bearwatch:{SECRET}/x@db.lan/bearwatch", "percent-encode"),
        ("postgresql://bearwatch@/bearwatch", "has no host"),
    ],
)
def test_a_store_server_url_gets_the_same_rules(url: str, expected: str) -> None:
    """Issue 12 on issue 15's rules: store.url is refused like a camera URL, its password never shown."""
    cfg = base()
    cfg["store"] = {"url": url}
    with pytest.raises(ConfigError) as err:
        parse_config(cfg)
    text = str(err.value)
    assert "store.url" in text and expected in text and len(text.splitlines()) == 1
    assert SECRET not in text and SECRET[:6] not in text


def test_webhook_url_without_a_host_is_refused() -> None:
    """Bug (same family): a webhook URL without a host passed validation."""
    cfg = base()
    cfg["notifications"] = {"webhook": {"url": "https:///hook"}}
    with pytest.raises(ConfigError, match=r"notifications.webhook.url: .*has no host"):
        parse_config(cfg)


@pytest.mark.parametrize(
    ("section", "path"),
    [
        ({"web": {"auth": {"tokens": [{"name": "ci", "token": "short"}]}}}, "tokens[0].token"),
        ({"web": {"auth": {"session_secret": "tooshort"}}}, "session_secret"),
        (
            {"notifications": {"webhook": {"url": "https://h/x", "secret": "abc"}}},
            "webhook.secret",
        ),
        ({"notifications": {"mqtt": {"host": "h", "password": 12345678}}}, "mqtt.password"),
        (
            {"web": {"auth": {"users": [{"name": "ann", "password_hash": "plain-pw"}]}}},
            "password_hash",
        ),
    ],
)
def test_config_errors_never_echo_a_secret_fields_value(section: dict[str, Any], path: str) -> None:
    """Bug: validation errors echoed the API token, session_secret, webhook secret and MQTT password ("(got '…')")."""
    cfg = {**base(), **section}
    with pytest.raises(ConfigError) as err:
        parse_config(cfg)
    text = str(err.value)
    assert path in text
    for value in ("short", "tooshort", "'abc'", "12345678", "plain-pw"):
        assert value not in text


def test_config_errors_never_echo_a_value_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Bug: a secret substituted from ${ENV} into the wrong key was printed back in the error."""
    monkeypatch.setenv("BW_TEST_SECRET", SECRET)
    with pytest.raises(ConfigError) as err:
        parse_config(base(fps="${BW_TEST_SECRET}"))
    assert "cameras[0].fps" in str(err.value)
    assert SECRET not in str(err.value)


def _check_config(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "monitor", "check-config", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )


def _bomb() -> str:
    text = 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n'
    for p, q in zip("abcdefgh", "bcdefghi", strict=True):
        text += f"{q}: &{q} [{', '.join([f'*{p}'] * 9)}]\n"
    return text


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (_bomb(), "expands to more than"),
        ("a: " + "[" * 5000 + "]" * 5000 + "\n", "nested too deeply"),
        ("a: " + "{b: " * 3000 + "1" + "}" * 3000 + "\n", "nested too deeply"),
        (b"cameras: \xff\xfe\x00\n", "is not UTF-8 text"),
        ("a: &a [*a]\n", "nested too deeply"),
        ("x" * (2 << 20), "larger than"),
    ],
    ids=["alias-bomb", "deep-list", "deep-map", "non-utf8", "cycle", "huge"],
)
def test_hostile_yaml_is_one_line_and_exit_2(
    tmp_path: Path, content: str | bytes, expected: str
) -> None:
    """Bug: a 700-byte alias bomb ran check-config > 60 s and > 1.2 GB; non-UTF-8 and 5000-deep nesting gave tracebacks."""
    path = tmp_path / "bad.yaml"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    proc = _check_config(path)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert expected in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 2  # the heading and the one line


def test_config_path_that_is_a_directory_says_so(tmp_path: Path) -> None:
    """Bug family: a directory given where a file belongs was reported as something else."""
    with pytest.raises(ConfigError, match="is a directory"):
        load_config(tmp_path)


def test_model_path_that_is_a_directory_is_called_a_directory(tmp_path: Path) -> None:
    """Bug: a model path that is a directory was reported as "does not exist"."""
    (tmp_path / "models").mkdir()
    (tmp_path / "c.yaml").write_text(
        "model: {path: models}\ncameras: [{id: gate, source: 'rtsp://127.0.0.1/x'}]\n"
    )
    proc = _check_config(tmp_path / "c.yaml")
    assert "model.path:" in proc.stderr and "is a directory" in proc.stderr
    assert "does not exist" not in proc.stderr


def test_run_refuses_an_unencoded_password_without_writing_it_to_the_journal(
    tmp_path: Path,
) -> None:
    """Bug: ``bearwatch run`` wrote the camera password (and other secrets in errors) to the journal."""
    (tmp_path / "c.yaml").write_text(
        "model: {path: m.onnx}\n"
        f"cameras: [{{id: gate, source: 'rtsp://admin:{SECRET}/x#y@cam.local/s'}}]\n"
        f"web: {{auth: {{session_secret: 'short', tokens: [{{name: ci, token: '{SECRET[:8]}'}}]}}}}\n"
    )
    proc = subprocess.run(
        [sys.executable, "-m", "monitor", "run", "-c", str(tmp_path / "c.yaml")],
        capture_output=True, text=True, timeout=60, cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )  # fmt: skip
    out = proc.stdout + proc.stderr
    assert proc.returncode == 2
    assert "cameras[0].source" in out and "percent-encode" in out
    assert SECRET not in out and SECRET[:8] not in out and "'short'" not in out
