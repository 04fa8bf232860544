"""``synchub run`` with no broker URL: dramatiq's in-process broker, worker threads and the
scheduler in one process — the single-box default needs no Redis."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from sandbox.http_target import HttpTarget
from tests.workers.conftest import ROOT
from tests.workers.factory import build


def test_synchub_run_in_process_writes_accepted_changes_and_stops_on_sigterm(tmp_path: Path):
    store_url = f"sqlite:///{tmp_path / 'state.db'}"
    with HttpTarget() as target:
        # Given changes in the inbox whose messages were never sent (the sweep must find them)
        runtime = build(store_url, target.url)
        at = datetime.now(UTC).isoformat()
        for i in range(20):
            record = {"id": f"s{i}", "firstName": "Ann", "lastName": "Nowak", "email": f"c{i}@example.pl"}
            runtime.pipeline.accept("shop", "customer", f"e{i}", {**record, "updated_at": at})
        runtime.close()
        time.sleep(1.1)  # older than the factory's sweep_after
        env = {k: v for k, v in os.environ.items() if k != "SYNCHUB_BROKER_URL"}
        env |= {
            "SYNCHUB_RUNTIME": "tests.workers.factory:runtime",
            "SYNCHUB_STORE_URL": store_url,
            "SYNCHUB_TARGET_URL": target.url,
        }
        log = tmp_path / "run.log"
        with log.open("wb") as out:
            # When `synchub run` starts with no broker configured
            proc = subprocess.Popen(
                [str(Path(sys.executable).parent / "synchub"), "run", "--sweep-every", "0.5"],
                cwd=ROOT,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
            try:
                deadline = time.monotonic() + 30
                while len(target.live("customer")) < 20 and time.monotonic() < deadline:
                    time.sleep(0.05)
                # Then its scheduler's sweep found the changes and its worker threads wrote them
                assert len(target.live("customer")) == 20, log.read_text(errors="replace")[-3000:]
                # and SIGTERM stops it cleanly
                proc.send_signal(signal.SIGTERM)
                assert proc.wait(30) == 0
            finally:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait(10)
