"""``facemtl live``: a camera or stream, analysed frame by frame with the tracker and shown —
in a window where OpenCV has a GUI, otherwise served to a browser on this machine as an MJPEG
stream (the headless OpenCV build that facemtl installs has no window).

The server listens on 127.0.0.1 only (``--host`` to choose another address on purpose) and serves
``/`` (a page showing the stream), ``/stream`` (multipart JPEG frames as they are made) and
``/frame.jpg`` (the latest frame). Frames are analysed at the source's pace; a viewer that falls
behind skips frames instead of queueing them.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import cv2
import numpy as np

PAGE = b"""<!doctype html><html><head><title>facemtl live</title></head>
<body style="margin:0;background:#111"><img src="/stream" style="max-width:100vw;max-height:100vh;display:block;margin:auto"></body></html>"""


class LatestFrame:
    """The newest encoded frame, with a condition viewers wait on for the next one."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._jpeg: bytes | None = None
        self._count = 0
        self.closed = False

    def put(self, image: np.ndarray) -> None:
        ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 85])
        if not ok:
            return
        with self._cond:
            self._jpeg, self._count = data.tobytes(), self._count + 1
            self._cond.notify_all()

    def close(self) -> None:
        with self._cond:
            self.closed = True
            self._cond.notify_all()

    def wait(self, after: int, timeout: float = 10.0) -> tuple[int, bytes | None]:
        """The first frame newer than number ``after`` (its number and bytes), or the latest one
        when the stream has ended or ``timeout`` passed."""
        with self._cond:
            self._cond.wait_for(lambda: self._count > after or self.closed, timeout)
            return self._count, self._jpeg


def _handler(frames: LatestFrame) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:  # quiet: the terminal shows the progress
            pass

        def do_GET(self) -> None:  # noqa: N802  # http.server's name
            if self.path == "/":
                self._send(PAGE, "text/html")
            elif self.path == "/frame.jpg":
                _, jpeg = frames.wait(0)
                if jpeg is None:
                    self.send_error(503, "no frame yet")
                else:
                    self._send(jpeg, "image/jpeg")
            elif self.path == "/stream":
                self.send_response(200)
                self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                seen = 0
                try:
                    while not frames.closed:
                        seen, jpeg = frames.wait(seen)
                        if jpeg is None:
                            continue
                        head = f"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: {len(jpeg)}\r\n\r\n"
                        self.wfile.write(head.encode() + jpeg + b"\r\n")
                except (BrokenPipeError, ConnectionResetError):  # the viewer left
                    return
            else:
                self.send_error(404)

        def _send(self, body: bytes, kind: str) -> None:
            self.send_response(200)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)

    return Handler


class FrameServer:
    """An MJPEG server for the frames of :class:`LatestFrame`, on a thread of its own."""

    def __init__(self, host: str = "127.0.0.1", port: int = 8765):
        self.frames = LatestFrame()
        self.httpd = ThreadingHTTPServer((host, port), _handler(self.frames))
        self.httpd.daemon_threads = True
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host!s}:{port}/"

    def __enter__(self) -> FrameServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.frames.close()
        self.httpd.shutdown()
        self.httpd.server_close()


def show_in_window(title: str) -> Callable[[np.ndarray], bool]:
    """A sink showing frames in an OpenCV window; it returns False once the viewer presses q or Esc."""

    def show(image: np.ndarray) -> bool:
        cv2.imshow(title, image)
        return cv2.waitKey(1) & 0xFF not in (ord("q"), 27)

    return show


def paced(frames_per_second: float) -> Callable[[], None]:
    """A pause that keeps a file's frames at their own rate (a camera sets its own pace)."""
    start, count = time.monotonic(), 0

    def wait() -> None:
        nonlocal count
        count += 1
        delay = start + count / frames_per_second - time.monotonic()
        if delay > 0:
            time.sleep(delay)

    return wait
