"""Where prometheus-client keeps the counters of several processes (multi-process mode).

prometheus-client reads ``PROMETHEUS_MULTIPROC_DIR`` once, when it is first imported, so
this module must not import it: the CLI calls :func:`use_multiprocess_dir` before anything
imports ``hotglue_webhooks.metrics``.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


def use_multiprocess_dir() -> str:
    """Make sure ``PROMETHEUS_MULTIPROC_DIR`` names a directory that this process's
    children (gunicorn workers, ``serve``'s web and worker processes) share; return it.

    When the variable is unset, a fresh empty directory is made and removed again when
    this process exits. A directory the operator set is used as it is: empty it before
    each start (prometheus-client's rule for multi-process mode).
    """
    given = os.environ.get(MULTIPROC_ENV)
    if given:
        os.makedirs(given, exist_ok=True)
        return given
    made = tempfile.mkdtemp(prefix="hgw-metrics-")
    os.environ[MULTIPROC_ENV] = made
    owner = os.getpid()

    def remove() -> None:
        # Forked children (gunicorn workers) inherit atexit handlers; only the maker removes.
        if os.getpid() == owner:
            shutil.rmtree(made, ignore_errors=True)

    atexit.register(remove)
    return made
