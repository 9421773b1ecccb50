"""Cases for the core checks."""

from preflight.testing import Scenario, bad, good


@bad("unused-suppression")
def _unknown_code():
    return Scenario(script="#!/bin/bash\n# preflight: disable=QQ999\nset -euo pipefail\necho hi\n")


@good("unused-suppression")
def _no_suppressions():
    return Scenario(script="#!/bin/bash\nset -euo pipefail\necho hi\n")
