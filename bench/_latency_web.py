"""The latency bench's web app: its own process, as ``synchub api`` runs in a deployment.

The same app ``synchub api`` serves (``workers.run.web_app`` on the installed runtime, named by
``SYNCHUB_RUNTIME``), with one addition for the bench: each event's time in ``Pipeline.accept``
(waiting for SQLite's write lock or for the group commit holding it, the INSERT, the commit) is
kept, and written as JSON to the file named on the command line when SIGTERM stops the server.
``SYNCHUB_BENCH_WEB_PROBE`` may name a module (``bench.ack_probe``) imported first, whose ``dump(path)``
then writes its own timings beside them.

    python bench/_latency_web.py PORT OUT.json
"""

from __future__ import annotations

import importlib
import json
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.pipeline import quiet_logs  # noqa: E402
from core.web.server import ServerThread  # noqa: E402
from workers.actors import declare  # noqa: E402
from workers.broker import make_broker  # noqa: E402
from workers.run import broker_address, web_app  # noqa: E402
from workers.runtime import current  # noqa: E402


def time_accepts(pipeline: Any) -> list[float]:
    """Seconds each event spends in ``pipeline.accept`` (wrapped on this instance only)."""
    took: list[float] = []
    accept = pipeline.accept

    def timed(*a: Any, **kw: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return accept(*a, **kw)
        finally:
            took.append(time.perf_counter() - t0)

    pipeline.accept = timed
    return took


def main() -> None:
    port, out = int(sys.argv[1]), Path(sys.argv[2])
    quiet_logs()
    probe = os.environ.get("SYNCHUB_BENCH_WEB_PROBE")
    probing = importlib.import_module(probe) if probe else None  # patches the app's parts on import
    runtime = current()
    broker = make_broker(broker_address(None, runtime))
    actors = declare(broker)
    took = time_accepts(runtime.pipeline)
    # uvicorn served in a thread, stopped here on SIGTERM: uvicorn's own handler re-raises the
    # signal once it has shut down, which would end the process before the timings are written
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    server = ServerThread(web_app(runtime, actors), "127.0.0.1", port).start()
    try:
        stop.wait()
        server.stop()
    finally:
        out.write_text(json.dumps(took))
        if probing is not None:
            probing.dump(out.with_suffix(".probe.json"))
        broker.close()
        runtime.close()


if __name__ == "__main__":
    main()
