"""The variables a job's shell has when it runs that preflight never sees now: SLURM's, the launcher's, bash's own."""

from __future__ import annotations

import os
import re

# set by SLURM (or PBS/Torque: PBS_O_WORKDIR, PBS_NODEFILE), the launcher or the shell when the job runs: never what
# preflight sees now
RUNTIME_PREFIXES = ("SLURM_", "SLURMD_", "SBATCH_", "PBS_", "PMI_", "PMIX_", "OMPI_", "TORCHELASTIC_")
RUNTIME_NAMES = {
    "CUDA_VISIBLE_DEVICES",
    "GPU_DEVICE_ORDINAL",
    "ROCR_VISIBLE_DEVICES",
    "HOSTNAME",
    "RANDOM",
    "PWD",
    "OLDPWD",
    "SECONDS",
    "PPID",
    "BASHPID",
    "LINENO",
    "BASH_SOURCE",
    "FUNCNAME",
    "LOCAL_RANK",
    "RANK",
    "WORLD_SIZE",
    "MASTER_ADDR",
    "MASTER_PORT",
    "REPLY",
    "OPTARG",
    "OPTIND",
    # bash's own, set in every shell (most never exported, so not in the environment preflight sees)
    "UID",
    "EUID",
    "BASH",
    "BASH_VERSION",
    "BASH_VERSINFO",
    "BASH_LINENO",
    "BASH_REMATCH",
    "BASH_ARGV",
    "BASH_ARGC",
    "BASH_COMMAND",
    "BASHOPTS",
    "SHELLOPTS",
    "SHLVL",
    "IFS",
    "PIPESTATUS",
    "GROUPS",
    "HOSTTYPE",
    "MACHTYPE",
    "OSTYPE",
    "EPOCHSECONDS",
    "EPOCHREALTIME",
    "DIRSTACK",
    "PS4",
    "_",
    # a cloud GPU pod's own (RunPod sets these in every pod; a runner written for one reads them)
    "RUNPOD_POD_ID",
    "RUNPOD_POD_HOSTNAME",
    "RUNPOD_GPU_COUNT",
    "RUNPOD_CPU_COUNT",
    "RUNPOD_PUBLIC_IP",
    "RUNPOD_DC_ID",
}

# commands that set the variables they name (`read X`, `getopts o X`, `printf -v X`, `let X=1`)
NAME_SETTERS = ("read", "getopts", "mapfile", "readarray", "let", "printf")


def set_at_run_time(name: str) -> bool:
    """A variable SLURM, the launcher or the shell sets when the job runs."""
    return name in RUNTIME_NAMES or name.startswith(RUNTIME_PREFIXES)


# `$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)`, `$(cd "$(dirname "$0")/.." && pwd)`, `$(dirname "$0")`: the
# directory of the script itself (or one above it), as written with its quotes and blanks removed
_SOURCE = r"(?:\$0|\$\{0\}|\$\{BASH_SOURCE(?:\[0\])?\}|\$BASH_SOURCE)"
_SCRIPT_DIR_RE = re.compile(
    rf"^\$\((?:cd\$\(dirname{_SOURCE}\)(?P<up>(?:/\.\.)*)(?:&&|;)pwd(?:-P)?|dirname{_SOURCE})\)$"
)


def script_dir_value(raw: str, script_dir: str | None) -> str | None:
    """The value of a word that is the script-directory idiom, for a script bash runs from its own file
    (``script_dir``; None under sbatch, which runs a copy in its spool directory); else None."""
    if script_dir is None or len(raw) > 200:
        return None
    m = _SCRIPT_DIR_RE.match(re.sub(r'["\s]', "", raw))
    if m is None:
        return None
    return os.path.normpath(script_dir + (m.group("up") or ""))
