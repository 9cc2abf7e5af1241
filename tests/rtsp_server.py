#!/usr/bin/python3
"""A tiny RTSP server for tests: GStreamer's test pattern as H.264 over RTSP on loopback.

Run by the *system* python3 (it needs PyGObject and GstRtspServer from Debian,
which the project's virtualenv cannot import); ``tests/rtsp.py`` starts it in
a subprocess. It prints ``READY <port>`` on stdout once it is listening, so the
caller knows both that it is up and which port it got (``--port 0`` picks a
free one; restart on the same port by passing the number back).

Debian packages: python3-gi, gir1.2-gst-rtsp-server-1.0,
gstreamer1.0-plugins-base (videotestsrc, videoconvert), gstreamer1.0-plugins-good
(rtph264pay), gstreamer1.0-plugins-ugly (x264enc).
"""

from __future__ import annotations

import argparse
import signal
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402

# One keyframe per second at 10 fps so a (re)connecting client decodes within ~1 s.
PIPELINE = (
    "( videotestsrc is-live=true pattern=ball "
    "! video/x-raw,width={width},height={height},framerate={fps}/1 "
    "! videoconvert "
    "! x264enc tune=zerolatency speed-preset=ultrafast key-int-max={fps} bitrate=500 "
    "! rtph264pay name=pay0 pt=96 config-interval=1 )"
)


def _parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--mount", default="/test")
    parser.add_argument("--fps", type=int, default=10)
    parser.add_argument("--width", type=int, default=320)
    parser.add_argument("--height", type=int, default=240)
    parser.add_argument("--user", default="", help="require Basic auth with this user")
    parser.add_argument("--password", default="")
    return parser.parse_args(argv)


def _require_auth(
    server: GstRtspServer.RTSPServer,
    factory: GstRtspServer.RTSPMediaFactory,
    user: str,
    password: str,
) -> None:
    """Make the server demand Basic auth, so a test proves credentials in the URL are used."""
    auth = GstRtspServer.RTSPAuth()
    token = GstRtspServer.RTSPToken()
    token.set_string(GstRtspServer.RTSP_TOKEN_MEDIA_FACTORY_ROLE, "user")
    auth.add_basic(GstRtspServer.RTSPAuth.make_basic(user, password), token)
    server.set_auth(auth)
    perms = GstRtspServer.RTSPPermissions()
    perms.add_role("user")
    perms.add_permission_for_role("user", GstRtspServer.RTSP_PERM_MEDIA_FACTORY_ACCESS, True)
    perms.add_permission_for_role("user", GstRtspServer.RTSP_PERM_MEDIA_FACTORY_CONSTRUCT, True)
    factory.set_permissions(perms)


def main(argv: list[str]) -> int:
    args = _parse_args(argv)
    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address(args.host)
    server.set_service(str(args.port))
    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_launch(PIPELINE.format(width=args.width, height=args.height, fps=args.fps))
    # Shared: every client sees the same live pipeline, like a real camera.
    factory.set_shared(True)
    if args.user:
        _require_auth(server, factory, args.user, args.password)
    server.get_mount_points().add_factory(args.mount, factory)
    loop = GLib.MainLoop()
    if server.attach(None) == 0:
        print(f"ERROR cannot listen on {args.host}:{args.port}", flush=True)
        return 1
    GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signal.SIGTERM, loop.quit)
    GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signal.SIGINT, loop.quit)
    print(f"READY {server.get_bound_port()}", flush=True)
    loop.run()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
