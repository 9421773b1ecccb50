"""SLURM tests: the ``slurm`` marker needs a live controller (scripts/local-slurm.sh start).

Where none answers, marked tests skip with the reason, unless PREFLIGHT_REQUIRE_SLURM=1 (CI):
then they fail, so a broken cluster can never turn into a green run of skips.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))  # --import-mode=importlib: make slurm_helpers importable
from slurm_helpers import probe_cluster  # noqa: E402


def pytest_runtest_setup(item):
    if item.get_closest_marker("slurm") is None:
        return
    info = probe_cluster()
    if isinstance(info, str):
        msg = f"no SLURM cluster: {info} (start one: sudo scripts/local-slurm.sh start)"
        if os.environ.get("PREFLIGHT_REQUIRE_SLURM") == "1":
            pytest.fail(f"PREFLIGHT_REQUIRE_SLURM=1 but {msg}", pytrace=False)
        pytest.skip(msg)


@pytest.fixture
def slurm():
    """The SlurmInfo of the live cluster (tests using it must be marked ``slurm``)."""
    info = probe_cluster()
    assert not isinstance(info, str), info
    if "SLURM_CONF" not in os.environ and info.conf:
        os.environ["SLURM_CONF"] = info.conf
    return info
