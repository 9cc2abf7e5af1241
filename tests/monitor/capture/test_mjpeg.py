"""An HTTP MJPEG camera (multipart/x-mixed-replace), served for real on 127.0.0.1."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import cv2
import pytest

from monitor.capture.hub import FrameHub
from monitor.capture.worker import CaptureWorker
from monitor.config import CameraConfig
from monitor.metrics import Metrics
from tests.media import scene


class MjpegServer:
    """A stdlib HTTP server streaming JPEG frames the way IP cameras' ``/video.mjpg`` do."""

    def __init__(self, fps: float = 20.0) -> None:
        period = 1.0 / fps
        stop = self.stop_event = threading.Event()

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
                self.end_headers()
                i = 0
                try:
                    while not stop.is_set():
                        ok, buf = cv2.imencode(
                            ".jpg", scene("bear" if (i // 10) % 2 else "empty", seed=i)
                        )
                        head = f"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: {len(buf)}\r\n\r\n"
                        self.wfile.write(head.encode() + buf.tobytes() + b"\r\n")
                        i += 1
                        stop.wait(period)
                except (BrokenPipeError, ConnectionResetError):
                    return

            def log_message(self, format: str, *args: object) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(target=self._server.serve_forever, name="mjpeg-server")

    def __enter__(self) -> MjpegServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop_event.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)


@pytest.fixture
def server() -> Iterator[MjpegServer]:
    with MjpegServer() as srv:
        yield srv


def test_an_mjpeg_camera_delivers_newest_frames(server: MjpegServer) -> None:
    drops: list[str] = []
    hub = FrameHub(lambda f, reason: drops.append(reason))
    cfg = CameraConfig(
        id="yard", source=f"http://viewer:pw-not-logged@127.0.0.1:{server.port}/video.mjpg", fps=10
    )
    worker = CaptureWorker(cfg, (64, 64), "crop", hub, Metrics())
    worker.start()
    try:
        end = time.monotonic() + 15
        while worker.status != "online" and time.monotonic() < end:
            threading.Event().wait(0.05)
        assert worker.status == "online", worker.last_error
        threading.Event().wait(1.5)  # nobody takes frames: the live slot keeps only the newest
        frames = hub.take(10)
        assert len(frames) == 1 and frames[0].live and frames[0].image.shape == (64, 64, 3)
        assert drops and set(drops) == {"superseded"}
    finally:
        worker.stop()
        assert worker.join(3.0)
    assert (
        "pw-not-logged" not in (worker.last_error or "") and "pw-not-logged" not in cfg.safe_source
    )
