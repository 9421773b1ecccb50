#!/usr/bin/env bash
# local-slurm.sh - a real single-node SLURM cluster on this host, for nanochat-preflight's own
# tests and CI (controller + compute node + slurmdbd/MariaDB accounting + 8 fake GPUs).
# Target: Debian 12 (slurm-wlm 22.05), root, no systemd needed (PID 1 may be anything).
#
# Usage: scripts/local-slurm.sh start  [--no-accounting] [--reset] [--quiet]
#        scripts/local-slurm.sh stop   [--keep-jobs]
#        scripts/local-slurm.sh status      exit 0 when the controller answers and the node is usable
#        scripts/local-slurm.sh env         print the env file (source it: SLURM_CONF=...)
#        scripts/local-slurm.sh logs [N]    tail the daemon logs (what CI prints on failure)
#
# start is idempotent: installs Debian's packages only when missing (--no-install-recommends),
# rewrites the config only if it changed (and then restarts only the daemons it owns), starts
# only daemons that are not running, and waits until the node is idle.
# stop stops only the daemons that start started (pid markers in <run-dir>/owned/); a munged or
# MariaDB that was already running is reused and left alone. Packages, config, job state and
# the accounting database are kept. --reset forgets all jobs (job ids restart at 1).
#
# Knobs (environment, defaults in brackets):
#   SLURM_LOCAL_CONF_DIR     [/etc/slurm]            slurm.conf, gres.conf, slurmdbd.conf
#   SLURM_LOCAL_RUN_DIR      [/var/lib/slurm-local]  pids, logs, state, spool, fake GPUs, env.sh
#   SLURM_LOCAL_ACCOUNTING   [1]   1 = slurmdbd + MariaDB (full sacct); 0 = only `sacct -c`
#   SLURM_LOCAL_GPUS         [8]   fake GPUs (gres File= symlinks to /dev/null)
#   SLURM_LOCAL_CPUS         [8]   CPUs declared; more than nproc oversubscribes (config_overrides)
#   SLURM_LOCAL_PARTITION    [debug]
#   SLURM_LOCAL_MAXTIME      [01:00:00]  partition MaxTime (EnforcePartLimits=ALL rejects more)
#   SLURM_LOCAL_MIN_JOB_AGE  [30]  seconds a finished job stays in scontrol (then: sacct)
#   SLURM_LOCAL_WAIT         [90]  seconds to wait for each daemon / for the node
#   SLURM_LOCAL_NODES        [1]   compute nodes; N > 1 runs N slurmd on this host (node1..nodeN,
#                                  one port each, names added to /etc/hosts as 127.0.0.1)
#   SLURM_LOCAL_CLUSTER      [local]  ClusterName (a second instance needs its own)
#   SLURM_LOCAL_PORT         [6817]   slurmctld port; slurmd ports follow it (+1, or +1..N)
#
# A second, two-node instance beside the default one (what the multi-node tests use):
#   scripts/local-slurm.sh start --two-nodes
# is SLURM_LOCAL_NODES=2 SLURM_LOCAL_CLUSTER=local2 SLURM_LOCAL_PORT=7817 with its own
# SLURM_LOCAL_CONF_DIR=/etc/slurm-2node and SLURM_LOCAL_RUN_DIR=/var/lib/slurm-local-2node; it
# shares munge, MariaDB and the default instance's slurmdbd (registered as cluster local2) when
# one answers, so sacct works per step there too. Debian's slurmd accepts -N NAME with a Port=
# per node, so two slurmd on one host behave as two nodes (srun places one task on each).
# A one-host cluster for the tests (measured on Debian's slurm-wlm 22.05).
set -euo pipefail

for a in "$@"; do   # --two-nodes selects the second instance's defaults before the knobs are read
  if [ "$a" = --two-nodes ]; then
    : "${SLURM_LOCAL_NODES:=2}" "${SLURM_LOCAL_CLUSTER:=local2}" "${SLURM_LOCAL_PORT:=7817}"
    : "${SLURM_LOCAL_CONF_DIR:=/etc/slurm-2node}" "${SLURM_LOCAL_RUN_DIR:=/var/lib/slurm-local-2node}"
    : "${SLURM_LOCAL_GPUS:=2}" "${SLURM_LOCAL_CPUS:=4}" "${SLURM_LOCAL_PARTITION:=two}"
  fi
done
CONF_DIR=${SLURM_LOCAL_CONF_DIR:-/etc/slurm}
RUN_DIR=${SLURM_LOCAL_RUN_DIR:-/var/lib/slurm-local}
NODES=${SLURM_LOCAL_NODES:-1}
CLUSTER=${SLURM_LOCAL_CLUSTER:-local}
PORT=${SLURM_LOCAL_PORT:-6817}
ACCOUNTING=${SLURM_LOCAL_ACCOUNTING:-1}
GPUS=${SLURM_LOCAL_GPUS:-8}
CPUS=${SLURM_LOCAL_CPUS:-8}
PARTITION=${SLURM_LOCAL_PARTITION:-debug}
MAXTIME=${SLURM_LOCAL_MAXTIME:-01:00:00}
MIN_JOB_AGE=${SLURM_LOCAL_MIN_JOB_AGE:-30}
WAIT=${SLURM_LOCAL_WAIT:-90}

CMD=${1:-}
[ $# -gt 0 ] && shift
QUIET=0; RESET=0; KEEP_JOBS=0; TAIL_N=40
while [ $# -gt 0 ]; do
  case "$1" in
    --no-accounting) ACCOUNTING=0 ;;
    --accounting) ACCOUNTING=1 ;;
    --quiet) QUIET=1 ;;
    --reset) RESET=1 ;;
    --keep-jobs) KEEP_JOBS=1 ;;
    --two-nodes) ;;
    [0-9]*) TAIL_N=$1 ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
  shift
done

usage() { sed -n '2,41p' "$0"; }
T_START=$(date +%s.%N)
log() { echo "[local-slurm +$(awk -v s="$T_START" -v n="$(date +%s.%N)" 'BEGIN{printf "%.1f", n-s}')s] $*"; }
die() { echo "[local-slurm] ERROR: $*" >&2; exit 1; }
need_root() { [ "$(id -u)" = 0 ] || die "must run as root (apt, daemons, SlurmUser=slurm)"; }

NODE=$(hostname -s)
if [ "$NODES" -gt 1 ]; then NODE_NAMES=$(seq -f 'node%g' -s ' ' 1 "$NODES"); else NODE_NAMES=$NODE; fi
NODE_LIST=${NODE_NAMES// /,}
FIRST_NODE=${NODE_NAMES%% *}
export SLURM_CONF=$CONF_DIR/slurm.conf   # daemons + client commands in this script
PIDS=$RUN_DIR/pids; OWNED=$RUN_DIR/owned; LOGS=$RUN_DIR/log
DB_PASS=slurmdbpass                       # MariaDB runs with --skip-networking: socket only
DB_SOCK=/run/mysqld/mysqld.sock

# running PID: the process exists and is not a zombie (a non-systemd PID 1 may reap late, so
# /proc/PID of a dead daemon can linger in state Z)
running() { local st; st=$(sed -n 's/^State:[[:space:]]*\(.\).*/\1/p' /proc/"$1"/status 2>/dev/null); [ -n "$st" ] && [ "$st" != Z ]; }
# alive NAME PIDFILE: the pid in PIDFILE is a live process whose comm is NAME
alive() { local pid; pid=$(cat "$2" 2>/dev/null) || return 1; [ -n "$pid" ] && running "$pid" && [ "$(cat /proc/"$pid"/comm 2>/dev/null)" = "$1" ]; }
# client commands never hang here: a wrong SLURM_CONF alone makes them retry for 60 s
q() { timeout 15 "$@"; }

# ================================================================ start
pkg_installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q '^install ok installed$'; }

install_packages() {
  local pkgs="munge slurmctld slurmd slurm-client" missing="" p tmp_policy=0
  [ "$ACCOUNTING" = 1 ] && pkgs="$pkgs slurmdbd mariadb-server"
  for p in $pkgs; do pkg_installed "$p" || missing="$missing $p"; done
  [ -z "$missing" ] && return 0
  log "installing:$missing"
  # keep the packages' postinst scripts from starting daemons themselves (we start them below)
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d; tmp_policy=1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # shellcheck disable=SC2086
  if ! apt-get install -y -qq --no-install-recommends $missing >/dev/null; then
    [ "$tmp_policy" = 1 ] && rm -f /usr/sbin/policy-rc.d
    die "apt-get install failed for:$missing"
  fi
  [ "$tmp_policy" = 1 ] && rm -f /usr/sbin/policy-rc.d
  log "packages installed"
}

CHANGED=0
write_if_changed() {  # FILE MODE OWNER <<content
  local f=$1 mode=$2 owner=$3 tmp; tmp=$(mktemp)
  cat > "$tmp"
  if ! cmp -s "$tmp" "$f" 2>/dev/null; then mv "$tmp" "$f"; CHANGED=1; log "wrote $f"; else rm -f "$tmp"; fi
  chmod "$mode" "$f"; chown "$owner" "$f"
}

write_config() {
  mkdir -p "$CONF_DIR" "$PIDS" "$OWNED" "$LOGS" "$RUN_DIR/ctld-state" "$RUN_DIR/slurmd-spool" "$RUN_DIR/fake-gpus"
  chown slurm:slurm "$PIDS" "$LOGS" "$RUN_DIR/ctld-state"   # slurmctld/slurmdbd run as SlurmUser=slurm
  # Fake GPUs: gres/gpu drops entries without File= ("Removing file-less GPU") and File= must be
  # a character/block device. Symlinks to /dev/null satisfy both; never combine with cgroup
  # ConstrainDevices (it would block /dev/null itself and every job fails 0:53).
  local i
  for ((i = 0; i < GPUS; i++)); do ln -sfn /dev/null "$RUN_DIR/fake-gpus/nvidia$i"; done

  local hw realmem node_hw overrides acct node_gres gres_line
  hw=$(slurmd -C | head -1 | sed -e 's/^NodeName=[^ ]* //' -e 's/ UpTime=.*//')
  realmem=$(sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p' <<<"$hw")
  if [ "$CPUS" = "$(nproc)" ]; then
    node_hw="$hw"; overrides="#SlurmdParameters=config_overrides"
  else   # declare more CPUs than the box has (concurrent test jobs): trust slurm.conf, not hardware
    node_hw="CPUs=$CPUS RealMemory=$realmem"; overrides="SlurmdParameters=config_overrides"
  fi
  if [ "$ACCOUNTING" = 1 ]; then
    acct="AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
AccountingStorageTRES=gres/gpu          # gres/gpu in sacct AllocTRES (fatal without slurmdbd)
JobAcctGatherType=jobacct_gather/linux"
  else
    acct="AccountingStorageType=accounting_storage/none   # plain sacct: 'accounting storage is disabled'
JobAcctGatherType=jobacct_gather/none"
  fi
  if [ "$GPUS" -gt 0 ]; then
    node_gres="Gres=gpu:$GPUS"; gres_line="NodeName=${NODE_LIST} Name=gpu File=$RUN_DIR/fake-gpus/nvidia[0-$((GPUS - 1))]"
  else
    node_gres=""; gres_line="# (no GPUs: SLURM_LOCAL_GPUS=0)"
  fi

  local node_lines="" name i=0 slurmd_pid="$PIDS/slurmd.pid" spool="$RUN_DIR/slurmd-spool" slurmd_log="$LOGS/slurmd.log"
  if [ "$NODES" -gt 1 ]; then   # one slurmd per node name, each on its own port (slurmd -N NAME)
    slurmd_pid="$PIDS/slurmd-%n.pid"; spool="$RUN_DIR/slurmd-spool-%n"; slurmd_log="$LOGS/slurmd-%n.log"
    for name in $NODE_NAMES; do
      i=$((i + 1)); mkdir -p "$RUN_DIR/slurmd-spool-$name"
      node_lines+="NodeName=$name NodeAddr=127.0.0.1 NodeHostname=$NODE Port=$((PORT + i)) $node_hw $node_gres State=UNKNOWN"$'\n'
    done
    # the node names must resolve (torchrun's rendezvous endpoint is the first node's name)
    grep -qE "^127\.0\.0\.1[[:space:]].*\b$FIRST_NODE\b" /etc/hosts || echo "127.0.0.1 $NODE_NAMES" >> /etc/hosts
  else
    node_lines="NodeName=$NODE NodeAddr=127.0.0.1 NodeHostname=$NODE $node_hw $node_gres State=UNKNOWN"$'\n'
  fi
  write_if_changed "$CONF_DIR/slurm.conf" 644 root:root <<EOF
# Generated by nanochat-preflight scripts/local-slurm.sh - $NODES-node test cluster on $NODE (127.0.0.1)
ClusterName=$CLUSTER
SlurmctldHost=$NODE(127.0.0.1)
SlurmctldPort=$PORT
SlurmdPort=$((PORT + 1))
SlurmUser=slurm
AuthType=auth/munge
CryptoType=crypto/munge
MpiDefault=none
MailProg=/bin/true
StateSaveLocation=$RUN_DIR/ctld-state    # job ids keep counting across stop/start
SlurmdSpoolDir=$spool
SlurmctldPidFile=$PIDS/slurmctld.pid
SlurmdPidFile=$slurmd_pid
SlurmctldLogFile=$LOGS/slurmctld.log
SlurmdLogFile=$slurmd_log
# No cgroups: /proc process tracking, no CPU binding/confinement (works in containers).
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SchedulerType=sched/backfill
SchedulerParameters=batch_sched_delay=0  # start jobs at once (default waits 3 s after submit)
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
$overrides
ReturnToService=2
EnforcePartLimits=ALL                    # reject at submit: --time > MaxTime, too many CPUs/GPUs
MinJobAge=$MIN_JOB_AGE                   # seconds a finished job stays in scontrol/squeue -t all
KillWait=5                               # SIGTERM -> SIGKILL grace on cancel/timeout
JobCompType=jobcomp/filetxt              # one line per finished job: 'sacct -c' works always
JobCompLoc=$LOGS/jobcomp.log
$acct
GresTypes=gpu
${node_lines%$'\n'}
PartitionName=$PARTITION Nodes=$NODE_LIST Default=YES MaxTime=$MAXTIME State=UP
EOF

  write_if_changed "$CONF_DIR/gres.conf" 644 root:root <<EOF
# Generated by nanochat-preflight scripts/local-slurm.sh - $GPUS fake GPUs (symlinks to /dev/null)
$gres_line
EOF

  if [ "$ACCOUNTING" = 1 ]; then
    write_if_changed "$CONF_DIR/slurmdbd.conf" 600 slurm:slurm <<EOF
# Generated by nanochat-preflight scripts/local-slurm.sh - accounting in local MariaDB (socket only)
AuthType=auth/munge
DbdHost=localhost
DbdAddr=127.0.0.1
SlurmUser=slurm
PidFile=$PIDS/slurmdbd.pid
LogFile=$LOGS/slurmdbd.log
DebugLevel=info
StorageType=accounting_storage/mysql
StorageHost=localhost
StorageUser=slurm
StoragePass=$DB_PASS
StorageLoc=slurm_acct_db
EOF
  fi
  printf 'export SLURM_CONF=%s\n' "$SLURM_CONF" > "$RUN_DIR/env.sh"
}

slurmd_markers() { (cd "$OWNED" 2>/dev/null && ls -d slurmd slurmd-* 2>/dev/null) || true; }
own() { cat "$2" > "$OWNED/$1"; log "started $1 (pid $(cat "$2"))"; }   # remember what we started
wait_for() {  # DESCRIPTION COMMAND...: poll until COMMAND succeeds
  local what=$1 i; shift
  for ((i = 0; i < WAIT * 5; i++)); do "$@" >/dev/null 2>&1 && return 0; sleep 0.2; done
  tail -n 20 "$LOGS"/*.log "$LOGS"/*.err 2>/dev/null >&2 || true
  die "timed out after ${WAIT}s waiting for $what (logs: $LOGS)"
}
stop_pid() {  # NAME PID: TERM, wait up to 30 s, then KILL
  local name=$1 pid=$2 i
  if [ -n "$pid" ] && running "$pid" && [ "$(cat /proc/"$pid"/comm 2>/dev/null)" = "$name" ]; then
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 150; i++)); do running "$pid" || break; sleep 0.2; done
    if running "$pid"; then log "$name (pid $pid) ignored SIGTERM; sending SIGKILL"; kill -KILL "$pid" || true; fi
    log "stopped $name (pid $pid)"
  else
    log "$name (pid ${pid:-?}) was not running"
  fi
}
stop_owned() {  # MARKER: stop a daemon this script started (marker slurmd-NODE: that node's slurmd)
  [ -e "$OWNED/$1" ] || return 0
  stop_pid "${1%%-*}" "$(cat "$OWNED/$1" 2>/dev/null)"
  rm -f "$OWNED/$1"
}

start_daemons() {
  local d
  if [ "$CHANGED" = 1 ]; then   # new config: restart the Slurm daemons we own (not munge/mariadb)
    for d in $(slurmd_markers) slurmctld slurmdbd; do
      if [ -e "$OWNED/$d" ]; then log "config changed: restarting $d"; stop_owned "$d"; fi
    done
  fi
  if [ "$RESET" = 1 ]; then
    for d in $(slurmd_markers) slurmctld slurmdbd; do stop_owned "$d"; done
    for d in slurmd slurmctld slurmdbd; do
      alive "$d" "$PIDS/$d.pid" && die "--reset: $d is running but was not started by this script"
    done
    rm -rf "${RUN_DIR:?}/ctld-state/"* "${RUN_DIR:?}"/slurmd-spool*/* "$LOGS/jobcomp.log"
    log "reset: controller state and jobcomp log wiped"
  fi

  # munge: authentication for every Slurm RPC
  if ! (munge -n | unmunge) >/dev/null 2>&1; then
    if [ ! -s /etc/munge/munge.key ]; then
      mungekey --create --keyfile=/etc/munge/munge.key
      chown munge:munge /etc/munge/munge.key; chmod 600 /etc/munge/munge.key
    fi
    install -d -o munge -g munge -m 0755 /run/munge
    rm -f /run/munge/munged.pid
    runuser -u munge -- /usr/sbin/munged    # forks; pid file /run/munge/munged.pid
    wait_for munged sh -c 'munge -n | unmunge'
    wait_for munged-pidfile test -s /run/munge/munged.pid
    cp /run/munge/munged.pid "$PIDS/munged.pid"; own munged "$PIDS/munged.pid"
  fi

  if [ "$ACCOUNTING" = 1 ]; then
    # MariaDB on Debian's datadir, unix socket only (no TCP port)
    if ! mysqladmin --socket=$DB_SOCK ping >/dev/null 2>&1; then
      install -d -o mysql -g mysql -m 0755 /run/mysqld
      [ -d /var/lib/mysql/mysql ] || mariadb-install-db --user=mysql --datadir=/var/lib/mysql >/dev/null
      touch "$LOGS/mariadb.err"; chown mysql:mysql "$LOGS/mariadb.err"
      rm -f /run/mysqld/mysqld.pid
      setsid /usr/sbin/mariadbd --user=mysql --skip-networking --innodb-lock-wait-timeout=900 \
        --pid-file=/run/mysqld/mysqld.pid --socket=$DB_SOCK \
        --log-error="$LOGS/mariadb.err" </dev/null >/dev/null 2>&1 &
      wait_for mariadb mysqladmin --socket=$DB_SOCK ping
      wait_for mariadb-pidfile test -s /run/mysqld/mysqld.pid
      cp /run/mysqld/mysqld.pid "$PIDS/mariadbd.pid"; own mariadbd "$PIDS/mariadbd.pid"
    fi
    if [ "$RESET" = 1 ]; then
      mysql --socket=$DB_SOCK -e "DROP DATABASE IF EXISTS slurm_acct_db"
      log "reset: accounting database dropped"
    fi
    mysql --socket=$DB_SOCK -e "CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY '$DB_PASS';
      GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost';"
    # a slurmdbd that already answers (the default instance's, for a second instance) is shared
    if ! alive slurmdbd "$PIDS/slurmdbd.pid" && ! q sacctmgr -n list cluster >/dev/null 2>&1; then
      /usr/sbin/slurmdbd                     # forks; reads slurmdbd.conf next to $SLURM_CONF
      wait_for slurmdbd-pidfile alive slurmdbd "$PIDS/slurmdbd.pid"
      own slurmdbd "$PIDS/slurmdbd.pid"
    fi
    wait_for "slurmdbd to answer" q sacctmgr -n list cluster
    if [ -z "$(q sacctmgr -n -P list cluster "$CLUSTER" format=cluster 2>/dev/null)" ]; then
      q sacctmgr -i add cluster "$CLUSTER" >/dev/null && log "registered cluster $CLUSTER with slurmdbd"
    fi
  fi

  if ! alive slurmctld "$PIDS/slurmctld.pid"; then
    /usr/sbin/slurmctld -f "$SLURM_CONF"
    wait_for slurmctld-pidfile alive slurmctld "$PIDS/slurmctld.pid"
    own slurmctld "$PIDS/slurmctld.pid"
  fi
  wait_for "slurmctld to answer" q scontrol ping

  local name pidf mark
  for name in $NODE_NAMES; do
    pidf="$PIDS/slurmd.pid"; mark=slurmd
    if [ "$NODES" -gt 1 ]; then pidf="$PIDS/slurmd-$name.pid"; mark="slurmd-$name"; fi
    if ! alive slurmd "$pidf"; then
      /usr/sbin/slurmd -f "$SLURM_CONF" -N "$name"
      wait_for "$mark-pidfile" alive slurmd "$pidf"
      own "$mark" "$pidf"
    fi
  done
}

# the state of every node, e.g. "idle" or "idle idle" (one word per node, as sinfo reports them)
node_state() { q sinfo -h -N -n "$NODE_LIST" -o %T 2>/dev/null | sort -u | tr '\n' ' ' | sed 's/ $//' || true; }

wait_for_node() {
  # Usable = idle/mixed/allocated/completing. A drain left by an earlier run is sticky across
  # restarts (saved state): resume it once slurmd has registered.
  local i state="" resumed=0
  for ((i = 0; i < WAIT * 2; i++)); do
    state=$(node_state)
    usable "$state" && break
    case "$state" in
      *drain*|*down*)
        if [ "$resumed" = 0 ]; then
          log "nodes $NODE_LIST are $state ($(q sinfo -h -N -n "$NODE_LIST" -o %E | sort -u | tr '\n' ' ')) - resuming"
          q scontrol update nodename="$NODE_LIST" state=resume || true; resumed=1
        fi ;;
    esac
    sleep 0.5
  done
  if ! usable "$state"; then
    tail -n 20 "$LOGS/slurmctld.log" "$LOGS"/slurmd*.log >&2 || true
    die "nodes $NODE_LIST not usable after ${WAIT}s: state=$state reason=$(q sinfo -h -N -n "$NODE_LIST" -o %E | sort -u | tr '\n' ' ')"
  fi
  log "cluster ready: nodes $NODE_LIST are $state (SLURM_CONF=$SLURM_CONF)"
}
# usable STATES: every node idle/mixed/allocated/completing
usable() { [ -n "$1" ] && [ -z "$(tr ' ' '\n' <<<"$1" | grep -vxE 'idle|mixed|allocated|completing')" ]; }

cmd_start() {
  need_root
  install_packages
  write_config
  start_daemons
  wait_for_node
  if [ "$QUIET" = 0 ]; then
    q sinfo
    q scontrol show node "$NODE_LIST" | grep -E 'NodeName|CPUTot|Gres=|State=' || true
    echo "env file: $RUN_DIR/env.sh   logs: $LOGS   owned daemons: $(cd "$OWNED" && echo *)"
  fi
}

# ================================================================ stop
cmd_stop() {
  need_root
  if [ ! -d "$OWNED" ] || [ -z "$(ls -A "$OWNED" 2>/dev/null)" ]; then
    log "nothing to stop (no pid markers in $OWNED)"; return 0
  fi
  # Cancel queued/running jobs so no slurmstepd/job process outlives the cluster.
  if [ "$KEEP_JOBS" = 0 ] && [ -e "$OWNED/slurmctld" ] && q scontrol ping >/dev/null 2>&1; then
    local jobs i
    jobs=$(q squeue -h -o %i 2>/dev/null | tr '\n' ' ')
    if [ -n "${jobs// /}" ]; then
      log "cancelling jobs: $jobs"
      # shellcheck disable=SC2086
      q scancel $jobs || true
      for ((i = 0; i < 60; i++)); do   # KillWait=5: allow up to 30 s
        [ -z "$(q squeue -h -t running,completing,pending -o %i 2>/dev/null)" ] && break; sleep 0.5
      done
    fi
  fi
  local name  # order: compute node, controller, accounting, database, authentication
  for name in $(slurmd_markers) slurmctld slurmdbd mariadbd munged; do stop_owned "$name"; done
}

# ================================================================ status
cmd_status() {
  local name pid rc=0 mark
  for name in munged mariadbd slurmdbd slurmctld slurmd; do
    pid=$(cat "$PIDS/$name.pid" 2>/dev/null || true)
    mark=""; [ -e "$OWNED/$name" ] && mark=" (started by local-slurm.sh)"
    if [ -n "$pid" ] && running "$pid" && [ "$(cat /proc/"$pid"/comm 2>/dev/null)" = "$name" ]; then
      echo "$name: running, pid $pid$mark"
    else
      echo "$name: not running"
    fi
  done
  if q scontrol ping >/dev/null 2>&1; then
    echo "controller: answers; nodes $NODE_LIST: $(node_state)"
    usable "$(node_state)" || rc=1
  else
    echo "controller: does not answer (SLURM_CONF=$SLURM_CONF)"; rc=1
  fi
  echo "env file: $RUN_DIR/env.sh   logs: $LOGS"
  return $rc
}

cmd_logs() {
  local f
  for f in "$LOGS"/slurmctld.log "$LOGS"/slurmd*.log "$LOGS"/slurmdbd.log "$LOGS"/mariadb.err; do
    [ -f "$f" ] || continue
    echo "===== $f (last $TAIL_N lines)"; tail -n "$TAIL_N" "$f"
  done
}

case "$CMD" in
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  env) cat "$RUN_DIR/env.sh" ;;
  logs) cmd_logs ;;
  -h|--help|help) usage ;;
  *) usage >&2; exit 2 ;;
esac
