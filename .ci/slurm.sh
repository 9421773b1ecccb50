#!/usr/bin/env bash
# .ci/slurm.sh - the local SLURM cluster in CI (called by .ci/run / ./run tests).
#
#   .ci/slurm.sh start    start it (root; installs Debian's packages on a fresh machine), print
#                         timing; prints the daemon logs and exits 1 if it does not come up
#   .ci/slurm.sh report   after a failed test run: cluster status, where the logs are, their tails
#   .ci/slurm.sh env      the line to eval for client commands: eval "$(.ci/slurm.sh env)"
#
# The SLURM tests (tests/slurm, marker `slurm`) then run with PREFLIGHT_REQUIRE_SLURM=1, so a
# cluster that is not there fails the build instead of skipping.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
LOCAL_SLURM=$ROOT/scripts/local-slurm.sh
RUN_DIR=${SLURM_LOCAL_RUN_DIR:-/var/lib/slurm-local}

case "${1:-}" in
  start)
    [ "$(id -u)" = 0 ] || { echo "::error::.ci/slurm.sh start must run as root (apt, daemons)" >&2; exit 1; }
    t0=$(date +%s)
    if ! "$LOCAL_SLURM" start; then
      echo "::error::the local SLURM cluster did not start; its logs follow ($RUN_DIR/log)" >&2
      "$LOCAL_SLURM" status >&2 || true
      "$LOCAL_SLURM" logs 60 >&2 || true
      exit 1
    fi
    echo "local SLURM up in $(( $(date +%s) - t0 ))s; env: $RUN_DIR/env.sh; logs: $RUN_DIR/log" >&2
    ;;
  report)
    echo "===== local SLURM after the failure: status (logs in $RUN_DIR/log)" >&2
    "$LOCAL_SLURM" status >&2 || true
    timeout 10 squeue -t all -o '%.8i %.12j %.10T %.8M %.20R' >&2 2>/dev/null || true
    "$LOCAL_SLURM" logs 40 >&2 || true
    [ -f "$RUN_DIR/log/jobcomp.log" ] && { echo "===== $RUN_DIR/log/jobcomp.log (last 20)" >&2; tail -n 20 "$RUN_DIR/log/jobcomp.log" >&2; }
    true
    ;;
  env)
    cat "$RUN_DIR/env.sh"
    ;;
  *)
    sed -n '2,10p' "$0" >&2; exit 2 ;;
esac
