"""The runtime of the operations CLI tests (``SYNCHUB_RUNTIME=tests.ops.factory:runtime``): the
operations deployment on the store named by ``SYNCHUB_STORE_URL``."""

from __future__ import annotations

import os

from core.store.db import Store
from tests.ops.helpers import ops_deployment
from workers.runtime import Runtime


def runtime() -> Runtime:
    return Runtime(ops_deployment(Store(os.environ["SYNCHUB_STORE_URL"])).pipeline)
