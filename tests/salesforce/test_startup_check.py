"""The workers describe the hub before they start: an org that lacks a mapped field stops them at
once, naming the field, instead of dead-lettering every record later."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from sandbox.salesforce import SalesforceEmulator
from tests.reliability import factory

ROOT = Path(__file__).resolve().parents[2]


def test_a_worker_does_not_start_on_an_org_missing_a_mapped_field():
    with SalesforceEmulator() as sf, tempfile.TemporaryDirectory() as tmp:
        # Given an org whose Contact lacks a field the shipped mapping writes
        del sf.org.schema["Contact"].fields["Loyalty_Id__c"]
        spec = {
            "store": f"sqlite:///{Path(tmp) / 'state.db'}",
            "crm": {
                "login_url": sf.base_url,
                "client_id": sf.client_id,
                "client_secret": sf.client_secret,
                "ca_bundle": sf.ca_bundle,
            },
            "shop": {"base_url": "http://127.0.0.1:9", "token": "unused", "webhook_secret": "unused"},
        }
        env = {
            **os.environ,
            "SYNCHUB_RUNTIME": "tests.reliability.factory:runtime",
            factory.ENV: json.dumps(spec),
            "SYNCHUB_BROKER_URL": "",
            "PYTHONPATH": str(ROOT),
        }
        # When a worker starts
        proc = subprocess.run(
            [sys.executable, "-m", "workers", "worker", "--threads", "1"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
    # Then it exits at once with the missing field named, and never says it is ready
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "Contact.Loyalty_Id__c is missing" in proc.stderr
    assert "synchub worker ready" not in proc.stdout
