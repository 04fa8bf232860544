"""The runtime of the operations CLI tests (``SYNCHUB_RUNTIME=tests.ops.factory:runtime``): the
operations deployment on the store named by ``SYNCHUB_STORE_URL`` — or, in-process, the one a
test installed in ``CURRENT`` (so the commands see the same memory systems as the test)."""

from __future__ import annotations

import os

from core.store.db import Store
from tests.ops.helpers import OpsDeployment, ops_deployment
from workers.runtime import Runtime

CURRENT: OpsDeployment | None = None


def runtime() -> Runtime:
    if CURRENT is not None:
        return Runtime(CURRENT.pipeline)
    return Runtime(ops_deployment(Store(os.environ["SYNCHUB_STORE_URL"])).pipeline)
