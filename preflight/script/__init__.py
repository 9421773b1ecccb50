"""The sbatch script model: parse a batch script without running it.

What it extracts (all with 1-based line numbers of the file they came from):
- ``#SBATCH`` directives, and which ones sbatch ignores (those after the first command);
- variable assignments and exports (unconditional or not), prefix environments;
- simple commands, split on ``; && || | &``, with background ``&`` and ``wait``;
- ``torchrun`` / ``python -m`` invocations (also under ``srun`` / ``uv run``) with their module,
  flags as (key, value, style) and ``--nproc_per_node``;
- ``set -e`` / ``-o errexit`` / ``pipefail`` and per-phase exit checks (``|| exit``, ``if !``, ``$?``);
- scripts it runs (``bash speedrun.sh``, ``source x.sh``), parsed too when the file exists.

Bad input never raises: a binary, non-UTF-8 or huge file becomes a ScriptModel whose
``problems`` say why; a line that cannot be tokenised (unterminated quote) is listed in
``unparsable`` and skipped.

Modules: ``lexer`` (tokens), ``commands`` (simple commands, assignments, shell options),
``tree`` + ``evaluator`` + ``conditions`` (the branches a script takes), ``runvars`` and
``sourced`` (what the job's shell and the scripts it sources set, unseen here), ``launchers``
(torchrun / python -m / srun and the wrappers around them), ``sbatch`` (SLURM's options and
``--test-only``), ``parser`` (the file, the scripts it runs), ``jobenv`` (the facts).
"""

from preflight.script.jobenv import JobEnv, job_env_fact, script_fact
from preflight.script.launchers import parse_flags
from preflight.script.lexer import Unterminated, tokenize
from preflight.script.model import Assignment, Command, Directive, Flag, Invocation, ScriptModel, Word
from preflight.script.parser import parse_script, parse_text
from preflight.script.sbatch import SbatchTest, gpus_from_gres, parse_option_list, parse_time_limit, sbatch_test_fact

__all__ = [
    "Assignment",
    "Command",
    "Directive",
    "Flag",
    "Invocation",
    "JobEnv",
    "SbatchTest",
    "ScriptModel",
    "Unterminated",
    "Word",
    "gpus_from_gres",
    "job_env_fact",
    "parse_flags",
    "parse_option_list",
    "parse_script",
    "parse_text",
    "parse_time_limit",
    "sbatch_test_fact",
    "script_fact",
    "tokenize",
]
