"""What nanochat prints, line by line: the regexes for every log line the index decodes (step lines of each
phase, overrides, saves, validation, end-of-phase summaries, downloads, SLURM and torchrun messages, traceback
frames), the bytes anchor that finds those lines without decoding the rest, and ``parse_step``.

Era-specific lines (phase headers, chained tracebacks, torchrun's summary) are in the profiles' ``log:``
sections (preflight.loggrammar); the indexer that uses both is preflight.logindex.
"""

from __future__ import annotations

import re

from preflight.logrecords import StepRecord
from preflight.units import MAX_INT_DIGITS, parse_int  # noqa: F401 (the log readers take them from here)

# every terminal escape, not only colours: CSI (ESC [ ... final), OSC (ESC ] ... BEL/ST: window titles,
# hyperlinks, clipboard writes), other two-byte escapes; and the C0 controls that are not layout
ANSI_RE = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b[@-Z\\-_]|[\x00-\x08\x0b-\x1f\x7f]"
)
RANK_PREFIX_RE = re.compile(r"^\[(?:rank|default)(\d+)\]:\s?")
RANK_NUM_RE = re.compile(r"(\d+)")

ANCHOR_RE = re.compile(
    rb"[Oo]verriding|Autodetected device|Distributed world size|ddp_local_rank: |Calculated number of|Resuming optimization"
    rb"|Traceback \(most|Error|Exception|[Ss]aved |\xe2\x9c\x85|Validation |CORE metric|ChatCORE|Pass@1"
    rb"|Peak memory usage|Total training time|Minimum validation|Done! Downloaded|Downloading \d+ shards"
    rb"|FOOTGUN|CANCELLED|Detected \d+ oom|Out Of Memory|OutOfMemory|CUDA out of memory|Watchdog|execve|No module named"
    rb"|watchdog got stuck|abort timed out|sliding window attention|Reset report and wrote"
    rb"|FAILED|=== |Number of parameters|Generating report to |Copying report|Step \d+ \| mmlu|NaN|Average reward|Mean Reward|Example step"
    rb"|rustbpe - INFO|Starting BPE training|Model: base_model|Task +, Accuracy|CORE +, +,"
    rb"|[Ll]oading (?:the )?model from|guessing model tag|accum|Muon: Grouping|micro-batch / rank|n_layer|num_layers: |user-provided number"
    rb"|Vocab size: |Estimated FLOPs per token: |Total number of training tokens: |Total training FLOPs estimate: "
    rb"|Segmentation fault|Killed|Aborted|Bus error|Illegal instruction|Floating point exception"
    rb"|-m (?:scripts|nanochat)\.|File \"|Fatal Python error|\.py: error: |torchrun: error: |: (?:command )?not found"
    rb"|Failed to (?:download|install|build|extract|prepare)|Could not install packages|Disk quota exceeded"
    rb"|No space left on device|No matching distribution|terminate called after throwing|what\(\): |CUDA error \("
    rb"|Process [\w-]{1,80}:(?=\r?\n)| accuracy: \d|Final: \d+/\d+ \("
)

# -- line grammars (ANSI-stripped text) -----------------------------------------------------------
# (a fork's tag after the percentage, "(0.05%) [ns3_ftrl_eta0p1] | loss: ...", is allowed)
STEP_BASE_RE = re.compile(r"^step (\d+)/(\d+) \(([\d.]+)%\)(?: \[[^\]]{1,80}\])? \| loss: +(\S+?) \|")
# mid's own line has its percentage; an excerpt pasted without it, its numbers aligned ("step 00401 | loss:  6.900375 |
# lrm: 1.00"), still holds mid's (or a fork's) step lines
STEP_MID_RE = re.compile(r"^step (\d+)(?: \(([\d.]+)%\))? \| loss: +(\S+?) \|")
STEP_SFT_RE = re.compile(r"^Step (\d+)/(\d+) \| Training loss: (\S+?)\s*\|")
# a fork's own GRPO loop prints no total: "Step 12 | Mean Reward: 0.0625 | LR Multiplier: 0.9941"
STEP_RL_RE = re.compile(r"^Step (\d+)(?:/(\d+))? \| (?:Example step|Average reward|Mean [Rr]eward)")
STEP_RL_LOSS_RE = re.compile(r"\| loss: (\S+?) \|")
# the base, mid and SFT grammars above on raw bytes, for printable-ASCII lines (where bytes and text agree)
STEP_BYTES_RE = re.compile(
    rb"(?P<base>step \d+/(?P<base_total>\d+) \([\d.]+%\)(?: \[[^\]]{1,80}\])? \| loss: +(?P<base_loss>\S+?) \|)"
    rb"|(?P<mid>step \d+(?: \([\d.]+%\))? \| loss: +(?P<mid_loss>\S+?) \|)"
    rb"|(?P<sft>Step \d+/(?P<sft_total>\d+) \| Training loss: (?P<sft_loss>\S+?)\s*\|)"
)
NOT_PLAIN_RE = re.compile(rb"[^\t\x20-\x7e]")
FIELD_RES = {
    "dt_ms": re.compile(r"\| dt: ([\d.]+)ms"),
    "tok_per_sec": re.compile(r"\| tok/sec: ([\d,]+)"),
    "mfu": re.compile(r"\| (?:bf16_)?mfu: ([\d.]+)"),
    "epoch": re.compile(r"\| epoch: (\d+)"),
    "lrm": re.compile(r"\| lrm: (-?\d{1,3}\.\d+)"),
    "reward": re.compile(r"\| (?:Average|Mean) [Rr]eward: (-?[\d.]+)"),
}
VAL_RE = re.compile(r"^Step (\d+) \| (Validation bpb|Validation loss|CORE metric|ChatCORE): (\S+)")
SFT_METRICS_RE = re.compile(r"^Step (\d+) \| mmlu_acc: (\S+), arc_easy_acc: (\S+)")
PASS_RE = re.compile(r"^Step (\d+) \| Pass@1: (\S+?),")
# (a fork's own rewrite prints "overriding depth = 20")
OVERRIDE_RE = re.compile(r"^[Oo]verriding:? (\w+) = (.*)$")
OVERRIDE_CFG_RE = re.compile(r"^Overriding config with (.*):$")
DEVICE_RE = re.compile(r"Autodetected device type: (\w+)")
# (a fork's rewrite: "This process is ddp_rank: 0, ddp_local_rank: 0, ddp_world_size: 1")
WORLD_RE = re.compile(r"Distributed world size: (\d+)|\bddp_local_rank: \d+, ddp_world_size: (\d+)")
ITERS_RE = re.compile(r"Calculated number of iterations[^\n]*?: ([\d,]+)")  # "... data:param ratio: 418"
RL_STEPS_RE = re.compile(r"Calculated number of steps: ([\d,]+)")
RESUME_RE = re.compile(r"(?:Resuming optimization|Loaded checkpoint) from step (\d+)")  # the latter: a close fork
# a line of nanochat's python logging (its handler writes to stderr): "2025-10-16 19:59:50,381 - nanochat.x - INFO - "
STDERR_LOGGING_RE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} - nanochat\.[\w.]+ - [A-Z]+ - ")
# base_eval's own report (its CORE table; base_train's CORE evaluation prints "Step N | CORE metric: X" instead)
BASE_EVAL_RE = re.compile(
    r"^Model: base_model \(step \d+\)$|^Task\s*, Accuracy\s*, Centered\b|^CORE\s*,\s*,\s*(-?[\d.]+)$"
)
# tok_train at work before it saves (rustbpe's own log lines): the process is the tokenizer's
TOK_TRAIN_RE = re.compile(r"\brustbpe - INFO - |\bStarting BPE training: \d+ merges")
# nanochat.checkpoint_manager's log line when a script loads a phase's checkpoint (every era)
LOAD_MODEL_RE = re.compile(r"[Ll]oading (?:the )?model from (\S+) with step (\d+)")
# ... and the line before it when no model tag was given (it takes the largest dN of that phase's checkpoints)
GUESS_TAG_RE = re.compile(r"No model tag provided, guessing model tag: (\S+)")
# a trainer's batch arithmetic (base, mid, SFT in later eras; classic SFT's own wording): its accumulation steps
GRAD_ACCUM_RE = re.compile(r"=> (?:gradient accumulation steps|Setting grad accum steps): (\d{1,6})")
# lines only a trainer prints while it sets up: that arithmetic, the Muon optimizer's parameter groups (eras up to
# early 2026) and base_train's vocabulary size, printed once it has loaded the tokenizer (every era)
TRAINER_SETUP_RE = re.compile(
    GRAD_ACCUM_RE.pattern + r"|^Muon: Grouping |^Tokens / micro-batch / rank: |^Vocab size: [\d,]+$"
)
# base_train's own setup lines (every upstream era prints them there and nowhere else; a fork's own trainer may
# print a "Vocab size", not these): a process that printed one and nothing else naming it is base_train, though
# it died before its first step
BASE_SETUP_RE = re.compile(
    r"^(?:Estimated FLOPs per token|Total number of training tokens|Total training FLOPs estimate): "
)
PARAMS_RE = re.compile(r"Number of parameters: ([\d,]+)")
# chat_eval's result per task ("ARC-Easy accuracy: 25.04%", every era) and their mean ("ChatCORE metric: 0.0093",
# printed from 2026)
# chat_eval's count before each task's accuracy line ("Final: 2/100 (2.00%)"): how many problems it was scored on
CHAT_EVAL_COUNT_RE = re.compile(r"^Final: (\d+)/(\d+) \(")
CHAT_EVAL_RE = re.compile(r"^([A-Za-z][\w-]{0,39}) accuracy: (\d{1,3}\.\d+)%$|^(ChatCORE) metric: (-?\d\.\d+)$")
# NCCL's watchdog giving up on a collective (a rank stopped and the others waited): torch's log lines, no traceback
NCCL_WATCHDOG_RE = re.compile(
    r"Watchdog caught collective operation timeout|watchdog got stuck for \d+ seconds|"
    r"Future for ProcessGroup abort timed out|Process group watchdog thread terminated"
)
# a run's own settings as it prints them, for the resume where no Overriding line or traced command shows its flags
# (argparse eras): its Model config (JSON or a dict), its micro-batch arithmetic, its explicit horizon
RUN_SETTING_RES = (
    ("depth", re.compile(r"[\"']n_layer[\"']: (\d+)|^num_layers: (\d+)$")),
    ("num_iterations", re.compile(r"^Using user-provided number of iterations: ([\d,]+)")),
    ("device_batch_size", re.compile(r"^Tokens / micro-batch / rank: (\d+) x \d+")),
    ("max_seq_len", re.compile(r"^Tokens / micro-batch / rank: \d+ x (\d+)")),
)
END_RES = {
    "peak_memory": re.compile(r"Peak memory usage: ([\d.]+)\s*MiB"),
    "training_time": re.compile(r"Total training time: ([\d.]+)m"),
    "min_val_bpb": re.compile(r"Minimum validation bpb: (\S+)"),
}
SAVE_RE = re.compile(  # nanochat's "Saved model parameters to: ..."; a close fork's "✅ Checkpoint saved: .../model_N.pt"
    r"(?:[Ss]aved (model parameters|model file|metadata|metadata file|optimizer state|optimizer file|model checkpoint"
    r"|tokenizer encoding|token_bytes|model(?= to:? \S*_checkpoints/)) to:?|(Checkpoint) saved:) (.+)$"
)
SAVE_KIND = {
    "Checkpoint": "model",
    "model parameters": "model",
    "model": "model",  # a fork's own rewrite: "saved model to .../model_000466.pt"
    "model file": "model",
    "metadata": "meta",
    "metadata file": "meta",
    "optimizer state": "optim",
    "optimizer file": "optim",
    "model checkpoint": "checkpoint",
    "tokenizer encoding": "tokenizer",
    "token_bytes": "token_bytes",
}
STEP_IN_PATH_RE = re.compile(r"(?:model|meta|optim)_(\d{6})")
DOWNLOAD_DONE_RE = re.compile(r"Done! Downloaded: (\d+)/(\d+) shards")
DOWNLOAD_START_RE = re.compile(r"Downloading (\d+) shards")
# the reason: "DUE TO TIME LIMIT", "DUE TO PREEMPTION", "DUE to SIGNAL Terminated" (slurmstepd's own case)
CANCEL_RE = re.compile(
    r"\*\*\* (JOB|STEP) (\S+) (?:ON (\S+) )?CANCELLED AT (\S+)(?: DUE [Tt][Oo] ([A-Za-z ]+?))? \*\*\*"
)
OOM_KILL_RE = re.compile(r"Detected (\d+) oom-kill event|Out Of Memory|oom-kill")
# `python -m X` whose module cannot be found (the job not in the checkout, an environment not activated):
# python prints one line, no traceback, and exits 1 before the phase starts
LAUNCH_ERROR_RE = re.compile(
    r"^(?:\S*/)?python[\d.]*: (?:Error while finding module specification for '(?P<module>[\w.]+)' "
    r"\((?P<exc>[\w.]+): (?P<msg>.*)\)|No module named (?P<missing>[\w.]+))\s*$"
)
# argparse's refusal of a command line ("base_train.py: error: unrecognized arguments: --models base"): it exits
# with status 2 before the phase starts, after its usage lines and with no traceback
# (torchrun's own parser too: "torchrun: error: ambiguous option: --run could match --run-path, --run_path")
ARGPARSE_ERROR_RE = re.compile(r"^(?:(?P<prog>[\w.-]{1,80})\.py|(?P<launcher>torchrun)): error: (?P<msg>\S.{0,400})$")
# the environment's install failed (uv's "× Failed to download `torch==2.9.1`", pip's "ERROR: Could not install
# packages due to an OSError"), and the reason a few lines below it
INSTALL_FAILED_RE = re.compile(
    r"^(?:[×x] |error: |ERROR: )?(?:Failed to (?:download|install|build|extract|prepare)\b|Could not install packages"
    r"|No matching distribution found)"
)
INSTALL_REASON_RE = re.compile(
    r"Disk quota exceeded|No space left on device|Temporary failure in name resolution|Network is unreachable"
    r"|Connection (?:refused|reset|timed out)|No matching distribution found[^\n]*"
)
# a C++ exception that ended the process (NCCL's watchdog thread: "terminate called after throwing an instance of
# 'c10::DistBackendError'", then "  what():  [PG ID 0 ...] ... CUDA error: an illegal memory access was encountered")
TERMINATE_RE = re.compile(r"^terminate called after throwing an instance of '(?P<type>[^']{1,200})'")
WHAT_RE = re.compile(r"^\s*what\(\):\s+(?P<what>\S.*)$")
# the header Python prints above the traceback of an exception that ended a thread ("Exception in thread
# Thread-1:") or a multiprocessing child ("Process ForkServerProcess-10:"), not the process that printed it
HELPER_EXC_RE = re.compile(r"^(?:Exception in thread .{1,120}|Process [\w-]{1,80}):$")
# nanochat's own warning when it attends with PyTorch SDPA (no Flash Attention 3 for this GPU) and a sliding window
SDPA_WINDOW_RE = re.compile(
    r"SDPA has no support for sliding window attention \(window_pattern='(?P<pattern>[A-Z]{1,16})'\)"
)
# the shell could not find a command: bash's "run.sh: line 52: uv: command not found", dash's (a script run by
# /bin/sh) "/var/lib/slurm/slurmd/job713551/slurm_script: 4: source: not found"
NOT_FOUND_RE = re.compile(
    r"^(?P<where>\S{1,300}): (?:line )?(?P<lineno>\d{1,7}): (?P<cmd>[^\s:]{1,200}): (?:command )?not found$"
)
# an exception's last line with no traceback before it: a paste that kept only the error, or a wrapper that
# printed str(e) ("FileNotFoundError: [Errno 2] No such file or directory: ...")
# a compiled kernel's own abort, no Python traceback (flash-attn's CHECK_CUDA: fprintf, then exit(1)):
# "CUDA error (/build/source/flash-attn/flash_fwd_launch_template.h:192): no kernel image is available ..."
NATIVE_CUDA_ERROR_RE = re.compile(r"^(?P<exc>CUDA error) \((?P<where>[^()]{1,300})\): (?P<msg>\S.*)$")
BARE_EXC_RE = re.compile(r"^(?P<exc>[A-Za-z_][\w.]{0,120}(?:Error|Exception))(?:: ?(?P<msg>.*))?$")
# bash's report of a foreground command a signal killed (no traceback: native crash, OOM killer, abort), e.g.
# "runs/speedrun.sh: line 56: 31902 Segmentation fault: 11  python -m scripts.base_train --depth=4" (macOS) or
# "speedrun.sh: line 80: 4242 Killed                  torchrun --standalone --nproc_per_node=8 -m scripts.base_train"
SHELL_SIGNAL_RE = re.compile(
    r"^\S+: line \d+: +\d+ (?P<signal>Segmentation fault|Killed|Aborted|Bus error|Illegal instruction"
    r"|Floating point exception)(?::? \d+)?(?: +\(core dumped\))? +(?P<cmd>\S.*)$"
)
SHELL_SIGNALS = {
    "Segmentation fault": "SIGSEGV",
    "Killed": "SIGKILL",
    "Aborted": "SIGABRT",
    "Bus error": "SIGBUS",
    "Illegal instruction": "SIGILL",
    "Floating point exception": "SIGFPE",
}
ENTRY_POINT_IN_COMMAND_RE = re.compile(r"(?:-m +(?:scripts|nanochat)\.|(?:scripts|nanochat)/)(\w+)")
# Python's faulthandler (PYTHONFAULTHANDLER=1, or a fatal signal in the interpreter): its dump of a native crash
# ("Fatal Python error: Segmentation fault", then each thread's frames, most recent call first)
FAULT_RE = re.compile(r"^Fatal Python error: (?P<what>\S.{0,200})$")
FAULT_THREAD_RE = re.compile(
    r"^(?P<current>Current thread|Thread) 0x[0-9a-fA-F]+ (?:\[[^\]]*\] )?\(most recent call first\):"
)
# the command line that starts an entry point, as `set -x` traces it ("+ torchrun ... -m scripts.base_train -- ...")
# or a terminal paste shows it after its prompt ("(.venv) me@host:~/nanochat$ python -m scripts.base_train --depth=4";
# on Windows "(venv) C:\\Users\\me\\nanochat>python -m ...", PowerShell's "PS C:\\...> "); an echo ("Running: python
# -m ...") is not one
COMMAND_LINE_RE = re.compile(
    r"^(?:\++ |(?:\([\w.-]{1,40}\) )?(?:[\w.@:~/-]{0,120}[$#] |(?:PS )?[A-Za-z]:\\[^>]{0,200}> ?))?"
    r"(?:[A-Za-z_]\w*=\S*\s+){0,8}(?:\S*/)?"
    r"(?:torchrun|python[\d.]*)\s(?:[^|;&]*?\s)?"
    r"-m\s+(?:scripts|nanochat)\.(?P<script>\w+)(?P<args>(?:\s[^|;&]*)?)$"
)
# slurmstepd could not start the batch script: its #! interpreter is not on the node (nothing in it ran)
BAD_INTERPRETER_RE = re.compile(r"execve\(\): bad interpreter\(([^)]*)\)")
TORCHRUN_RANK_RE = re.compile(r"^\s*rank\s*:\s*(\d+) \(local_rank: (\d+)\)")  # its "Root Cause" block
TORCHRUN_FAILED_RE = re.compile(r"^((?:scripts|nanochat)\.\w+) FAILED")
MARKER_RE = re.compile(r"^=+ *(?:phase:? *)?([a-z_]+) *=+$")
FRAME_RE = re.compile(r'^\s*File "([^"]+)", line (\d+)')
# frames of the interpreter's own library and installed packages: their source lines say nothing of the job
PYTHON_INSTALL_RE = re.compile(r"site-packages|dist-packages|/lib/python3[\d.]*/|^<frozen ")
EXC_RE = re.compile(r"^([A-Za-z_][\w.]*)(?::\s?(.*))?$")
SCRIPT_IN_PATH_RE = re.compile(r"(?:^|[/\\])(?P<package>scripts|nanochat)[/\\](?P<stem>\w+)\.py$")
# phase names, script -> phase, "<word>_checkpoints" -> script: preflight/phases.py
# configurator keys that only one script has (Era A Overriding lines)
OVERRIDE_HINTS = {
    "depth": "base_train",
    "target_param_data_ratio": "base_train",
    "target_flops": "base_train",
    "core_metric_every": "base_train",
    "save_every": "base_train",
    "resume_from_step": "base_train",
    "dry_run": "mid_train",
    "target_examples_per_step": "chat_sft",
    "eval_metrics_every": "chat_sft",
    "eval_metrics_max_problems": "chat_sft",
    "examples_per_step": "chat_rl",
    "num_samples": "chat_rl",
    "split_tokens": "base_loss",
    "model_step": "base_loss",
}


_CONTROL_CHARS = frozenset(chr(c) for c in (*range(0, 9), *range(11, 32), 127))


def strip_ansi(text: str) -> str:
    """Text from a log without escape sequences or control characters: findings quote log lines,
    and a log must not be able to retitle, recolour or clear the user's terminal."""
    return ANSI_RE.sub("", text) if not _CONTROL_CHARS.isdisjoint(text) else text


def parse_number(text: str | None) -> float | None:
    if text is None:
        return None
    try:
        return float(text.replace(",", "").rstrip("|%"))
    except ValueError:
        return None


def parse_step(text: str, line: int) -> StepRecord | None:
    """Parse one training step line of any era; None if it is not one (or its step is no number)."""
    m = STEP_BASE_RE.match(text)
    if m:
        step, total, loss, style, pct = m.group(1), m.group(2), m.group(4), "base", m.group(3)
    elif m := STEP_MID_RE.match(text):
        step, total, loss, style, pct = m.group(1), None, m.group(3), "mid", m.group(2)
    elif m := STEP_SFT_RE.match(text):
        step, total, loss, style, pct = m.group(1), m.group(2), m.group(3), "sft", None
    elif m := STEP_RL_RE.match(text):
        ml = STEP_RL_LOSS_RE.search(text)
        step, total, loss, style, pct = m.group(1), m.group(2), ml.group(1) if ml else None, "rl", None
    else:
        return None
    step_n, total_n = parse_int(step), parse_int(total)
    if step_n is None or (total is not None and total_n is None):
        return None
    rec = StepRecord(step_n, total_n, parse_number(loss), line, style, pct=parse_number(pct))
    for name, rx in FIELD_RES.items():
        mf = rx.search(text)
        if mf and name != "epoch":
            setattr(rec, name, parse_number(mf.group(1)))
    return rec
