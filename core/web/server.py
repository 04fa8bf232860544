"""Serving the web app with uvicorn: in the foreground (``synchub api`` / ``synchub run``) or in a
background thread (tests, and ``synchub run``, where the workers own the main thread).

Both refuse a non-loopback bind address when the app has no credential (``auth.check_bind``).
"""

from __future__ import annotations

import socket
import threading
import time
from typing import Any

import uvicorn
from starlette.applications import Starlette

from core.web.auth import check_bind


def _config(app: Starlette, host: str, port: int, **options: Any) -> uvicorn.Config:
    check_bind(host, getattr(app.state, "credentials", None))
    # log_config=None: uvicorn's loggers go through core.logging's handler (redaction, JSON)
    return uvicorn.Config(app, host=host, port=port, log_config=None, lifespan="off", **options)


def serve(app: Starlette, host: str = "127.0.0.1", port: int = 8000) -> None:
    """Serve until SIGINT/SIGTERM (uvicorn's own signal handling)."""
    uvicorn.Server(_config(app, host, port)).run()


class ServerThread:
    """uvicorn in a daemon thread; ``url`` once started, ``stop()`` to shut it down."""

    def __init__(self, app: Starlette, host: str = "127.0.0.1", port: int = 0) -> None:
        if port == 0:
            # uvicorn cannot report the port it bound to 0: take a free one first
            with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
                probe.bind((host, 0))
                port = int(probe.getsockname()[1])
        self.host, self.port = host, port
        self.server = uvicorn.Server(_config(app, host, port))
        self.thread = threading.Thread(target=self.server.run, name="synchub-web", daemon=True)

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def start(self, timeout: float = 15.0) -> ServerThread:
        self.thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the web server did not start on {self.url}")
            time.sleep(0.02)
        return self

    def stop(self, timeout: float = 10.0) -> None:
        self.server.should_exit = True
        self.thread.join(timeout)
