"""The chat smoke test (fact ``chat_smoke``): which model code can run the final checkpoint, then run it.

1. Torch-free: the checkpoint's tensor names/shapes (zip directory + pickle opcodes, never
   unpickled) and ``model_config`` decide whether the bundled GPT can hold it (classic names and
   shapes, only config keys it knows). Broken files (corrupt zip, a storage smaller than its
   tensor, a vocab that disagrees with the tokenizer) fail in every era, before anything loads.
2. Compatible: the bundled GPT loads it in this process (needs torch and the repository's nanochat/).
3. Otherwise, only with ``--smoke`` (or ``smoke: true``): the user's own nanochat, from the checkout,
   with the checkout's Python, in a child process (preflight/smoke_driver.py) with no network,
   a scratch HOME/cwd/base dir, no bytecode writes, time and memory limits, ``weights_only`` loads.
4. Neither possible: FactUnavailable with the reason (the CHAT checks skip; they never fail on it).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from preflight.ckpt import CORE_KEYS, expected_shapes
from preflight.facts import FactUnavailable
from preflight.phases import TRAIN_PHASES

PROMPT = "Hello"
MAX_TOKENS = 8
# The bundled GPT attends to the whole context; a sliding-window model ("S" in window_pattern,
# a quarter of sequence_len) computes the same as long as prompt + output fit in that window.
SMOKE_SPAN = 16
MARKER = "@@PREFLIGHT-SMOKE@@ "
DRIVER = Path(__file__).with_name("smoke_driver.py")
OFFLINE_ENV = {
    "HF_HUB_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "WANDB_MODE": "disabled",
    "NO_PROXY": "*",
    "no_proxy": "*",
}
PASSED_ENV = ("PATH", "LANG", "LC_ALL", "TZ", "LD_LIBRARY_PATH")  # nothing else of ours reaches user code


@dataclass
class SmokeOutcome:
    phase: str
    model: str
    step: int
    route: str  # "bundled" | "checkout"
    ok: bool = False
    failure: str | None = None  # "checkpoint" (CHAT001) | "code" (CHAT002)
    message: str = ""
    tail: list[str] = field(default_factory=list)
    said: str = ""
    tokens: list[int] = field(default_factory=list)
    seconds: float = 0.0
    python: str | None = None
    checkout: str | None = None
    why_route: str = ""
    fix: str = ""

    def to_json(self) -> dict[str, Any]:
        out = {
            "phase": self.phase,
            "model": self.model,
            "step": self.step,
            "route": self.route,
            "why": self.why_route,
            "ok": self.ok,
            "seconds": round(self.seconds, 3),
        }
        if self.ok:
            out.update(said=self.said, tokens=self.tokens)
        else:
            out.update(failure=self.failure, message=self.message, tail=self.tail)
        if self.route == "checkout":
            out.update(python=self.python, checkout=self.checkout)
        return out


# -- torch-free decisions -----------------------------------------------------------------------
def final_model(checkpoints: Any) -> tuple[str, Any, Any] | None:
    """The chat model a user would talk to: sft (chat_cli's default source), else the latest trained
    phase before it (its last complete step)."""
    trained = list(TRAIN_PHASES)
    for phase in reversed(trained[: trained.index("sft") + 1]):
        pc = checkpoints.phases.get(phase)
        if pc is not None and pc.last is not None:
            return phase, pc, pc.last
    return None


def bundled_fit(tensors: dict[str, Any], cfg: dict[str, Any]) -> str | None:
    """None if the bundled GPT can hold this checkpoint exactly, else why not (one line)."""
    unknown = sorted(k for k in cfg if k not in CORE_KEYS and k != "window_pattern")
    if unknown:
        return f"model_config has keys the bundled GPT does not know: {', '.join(unknown[:4])}"
    try:
        want = expected_shapes(cfg)
    except (KeyError, TypeError, ValueError, ZeroDivisionError, OverflowError) as exc:
        return f"model_config cannot describe the bundled GPT ({type(exc).__name__}: {exc})"
    have = {k.removeprefix("_orig_mod."): v for k, v in tensors.items()}
    extra = [k for k in have if k not in want]
    if extra:
        groups = sorted(
            {
                k.split(".", 3)[-1].removesuffix(".weight") if k.startswith("transformer.h.") else k.split(".")[0]
                for k in extra
            }
        )
        return f"{len(extra)} tensor(s) the bundled GPT lacks ({', '.join(groups[:8])})"
    missing = [k for k in want if k not in have]
    if missing:
        return f"{len(missing)} tensor(s) of the bundled GPT are absent (e.g. {missing[0]})"
    for k, shape in want.items():
        if tuple(have[k].shape) != shape:
            return f"{k} has shape {tuple(have[k].shape)}; the bundled GPT builds {shape} from model_config"
    pattern = str(cfg.get("window_pattern", "L")).upper()
    if "S" in pattern and int(cfg["sequence_len"]) // 4 < SMOKE_SPAN:
        return f"sliding-window attention (window_pattern {pattern}) with a window under {SMOKE_SPAN} tokens"
    return None


def broken(fc: Any, cfg: dict[str, Any], tokenizer_vocab: int | None) -> list[str]:
    """What makes the file unusable in any era (no torch)."""
    if fc.error:
        return [fc.error]
    out = []
    for name, t in fc.tensors.items():
        need = math.prod(t.shape) if t.shape else 1
        if t.numel and t.numel < need:
            out.append(f"tensor {name} has shape {t.shape} but its storage holds only {t.numel} values (truncated)")
            break
    vocab = cfg.get("vocab_size")
    if isinstance(vocab, int) and tokenizer_vocab is not None and tokenizer_vocab != vocab:
        out.append(
            f"tokenizer vocab {tokenizer_vocab} != model vocab {vocab} (tokenizer retrained after this checkpoint?)"
        )
    return out


def n_params(cfg: dict[str, Any]) -> int:
    vp = 64 * math.ceil(int(cfg["vocab_size"]) / 64)
    c, layers, h, kv = int(cfg["n_embd"]), int(cfg["n_layer"]), int(cfg["n_head"]), int(cfg["n_kv_head"])
    return 2 * vp * c + layers * (10 * c * c + 2 * kv * (c // h) * c)


# -- where the user's code and Python are --------------------------------------------------------
def _is_model_checkout(d: Path) -> bool:
    return (d / "nanochat" / "checkpoint_manager.py").is_file() and (d / "nanochat" / "gpt.py").is_file()


def find_checkout(ctx: Any) -> tuple[Path | None, str]:
    """(checkout, how it was found) or (None, why not): --checkout, the ledger, the script's checkout."""
    explicit = ctx.config.get("checkout")
    if explicit:
        d = Path(os.path.expanduser(str(explicit)))
        if _is_model_checkout(d):
            return d, "--checkout"
        return None, f"--checkout {d} has no nanochat/checkpoint_manager.py and nanochat/gpt.py"
    ledger = ctx.get("ledger", None)
    cands: list[tuple[Path, str]] = []
    if isinstance(ledger, dict):
        rec = ledger.get("profile")
        if isinstance(rec, dict) and isinstance(rec.get("checkout"), str):
            cands.append((Path(rec["checkout"]), "the run ledger"))
        if isinstance(ledger.get("cwd"), str):
            cands.append((Path(ledger["cwd"]), "the submit dir in the run ledger"))
    profile = ctx.get("profile", None)
    if getattr(profile, "checkout", None) is not None:
        cands.append((Path(profile.checkout), "the script's checkout"))
    for d, how in cands:
        if _is_model_checkout(d):
            return d, how
    return None, "no nanochat checkout found (pass --checkout DIR)"


def find_python(ctx: Any, checkout: Path) -> tuple[str | None, str]:
    explicit = ctx.config.get("python")
    if explicit:
        p = shutil.which(os.path.expanduser(str(explicit)))
        return (p, "--python") if p else (None, f"--python {explicit} is not an executable")
    for rel in (".venv/bin/python", "venv/bin/python"):
        p = checkout / rel
        if p.is_file() and os.access(p, os.X_OK):
            return str(p), f"the checkout's {rel.split('/')[0]}"
    return None, f"no Python for {checkout}: no .venv/bin/python there (pass --python PATH)"


# -- the child process ---------------------------------------------------------------------------
_UNSHARE: list[str] | None = None


def _no_network_prefix() -> list[str]:
    """`unshare -rn` (an empty network namespace) where the kernel allows it; else offline env only."""
    global _UNSHARE
    if _UNSHARE is None:
        _UNSHARE = []
        exe = shutil.which("unshare")
        if exe:
            try:
                ok = subprocess.run([exe, "-rn", "true"], capture_output=True, timeout=5, check=False).returncode == 0
            except (OSError, subprocess.SubprocessError):
                ok = False
            _UNSHARE = [exe, "-rn"] if ok else []
    return list(_UNSHARE)


@dataclass
class ChildResult:
    doc: dict[str, Any] | None
    returncode: int | None
    seconds: float
    timed_out: bool
    stderr_tail: list[str]


def run_child(
    python: str, checkout: Path, ckpt_dir: str, step: int, base_dir: str, *, timeout: float, memory_mb: int
) -> ChildResult:
    """Run the driver with the user's Python in a scratch dir; the user's files are only read."""
    scratch = Path(tempfile.mkdtemp(prefix="preflight-smoke-"))
    try:
        home, base = scratch / "home", scratch / "base"
        home.mkdir()
        base.mkdir()
        (base / "tokenizer").symlink_to(Path(base_dir).resolve() / "tokenizer")  # read through a link
        driver = scratch / "driver.py"  # not run from preflight/: its modules must not shadow the user's
        driver.write_text(DRIVER.read_text(encoding="utf-8"), encoding="utf-8")
        env = {k: os.environ[k] for k in PASSED_ENV if k in os.environ}
        env.update(
            OFFLINE_ENV,
            HOME=str(home),
            TMPDIR=str(scratch),
            XDG_CACHE_HOME=str(scratch / "cache"),
            HF_HOME=str(scratch / "hf"),
            NANOCHAT_BASE_DIR=str(base),
            PYTHONDONTWRITEBYTECODE="1",
            PYTHONNOUSERSITE="1",
            CUDA_VISIBLE_DEVICES="",
            NANOCHAT_DTYPE="float32",
            OMP_NUM_THREADS=str(min(4, os.cpu_count() or 1)),
        )
        job = {
            "checkout": str(checkout.resolve()),
            "checkpoint_dir": ckpt_dir,
            "step": step,
            "prompt": PROMPT,
            "max_tokens": MAX_TOKENS,
            "memory_mb": memory_mb,
            "cpu_s": int(timeout * 4) + 10,
        }
        argv = [*_no_network_prefix(), python, "-B", str(driver), json.dumps(job)]
        start = time.monotonic()
        try:
            proc = subprocess.Popen(
                argv,
                cwd=scratch,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                start_new_session=True,
            )
        except OSError as exc:
            raise FactUnavailable(f"cannot run {python}: {exc.strerror or exc}") from None
        timed_out = False
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
            os.killpg(proc.pid, signal.SIGKILL)
            out, err = proc.communicate()
        seconds = time.monotonic() - start
        doc = None
        for line in reversed(out.decode("utf-8", "replace").splitlines()):
            if line.startswith(MARKER):
                try:
                    doc = json.loads(line[len(MARKER) :])
                except ValueError:
                    doc = None
                break
        tail = [ln for ln in err.decode("utf-8", "replace").splitlines() if ln.strip()][-6:]
        return ChildResult(doc, proc.returncode, seconds, timed_out, tail)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def classify_child(
    res: ChildResult, outcome: SmokeOutcome, python: str, timeout: float, memory_mb: int
) -> SmokeOutcome:
    """Fill the outcome from the child's report, or raise FactUnavailable when it says nothing about the model."""
    outcome.seconds = res.seconds
    if res.timed_out:
        raise FactUnavailable(f"the smoke test did not finish within {timeout:g}s (smoke-timeout) with {python}")
    doc = res.doc
    if doc is None:
        rc = res.returncode
        if rc is not None and rc < 0 and -rc in (signal.SIGKILL, signal.SIGXCPU):
            raise FactUnavailable(
                f"the smoke child was killed ({signal.Signals(-rc).name}): over the time or "
                f"memory limit (smoke-timeout {timeout:g}s, smoke-memory {memory_mb} MiB)"
            )
        if rc in (126, 127):  # the shell convention unshare follows: the command could not be executed
            raise FactUnavailable(f"cannot run {python}: {' '.join(res.stderr_tail[-1:])}")
        outcome.failure = "code"
        outcome.message = f"{python} exited with {'signal ' + str(-rc) if rc is not None and rc < 0 else 'code ' + str(rc)} and no report"
        outcome.tail = res.stderr_tail
        return outcome
    if doc.get("ok"):
        outcome.ok, outcome.said, outcome.tokens = True, str(doc.get("text", "")), list(doc.get("tokens") or [])
        return outcome
    stage, etype, msg = doc.get("stage"), str(doc.get("type", "")), str(doc.get("message", ""))
    if stage == "import" and etype in ("ModuleNotFoundError", "ImportError"):
        raise FactUnavailable(f"{python} cannot import the checkout's model code: {etype}: {msg}")
    if stage == "refused":
        raise FactUnavailable(msg)
    if etype == "MemoryError" or "can't allocate memory" in msg or "bad_alloc" in msg:
        raise FactUnavailable(f"the model does not fit the smoke test's memory limit (smoke-memory {memory_mb} MiB)")
    outcome.failure = "checkpoint" if stage in ("nonfinite", "vocab") else "code"
    outcome.message = f"{etype}: {msg}".strip(": ") if stage not in ("nonfinite", "vocab") else msg
    outcome.tail = [str(x) for x in doc.get("tail") or []]
    return outcome


# -- the bundled GPT, in this process -------------------------------------------------------------
def bundled_root() -> Path | None:
    """The repository root holding the bundled trainer (nanochat/ is not in the wheel)."""
    root = Path(__file__).resolve().parent.parent
    return (
        root if (root / "nanochat" / "gpt.py").is_file() and (root / "nanochat" / "base_train.py").is_file() else None
    )


def bundled_unavailable() -> str | None:
    from preflight.ckpt_raw import TORCH_EXTRA, torch_available

    if not torch_available():
        return f"torch is not installed with preflight ({TORCH_EXTRA})"
    if bundled_root() is None:
        return "the bundled trainer (nanochat/ in the repository) is not available here"
    return None


def smoke_generate(
    model_path: str, meta: dict, tokenizer_path: str, max_tokens: int = MAX_TOKENS
) -> tuple[list[int], str]:
    """Build the bundled GPT from meta, load the (mmap'd) state dict, check the logits, generate greedily."""
    import torch

    root = str(bundled_root())
    if root not in sys.path:
        sys.path.append(root)
    from nanochat.gpt import GPT, GPTConfig
    from nanochat.tokenizer import RustBPETokenizer, load_tokenizer_pkl

    tok = RustBPETokenizer(load_tokenizer_pkl(tokenizer_path))
    cfg = dict(meta["model_config"])
    if tok.get_vocab_size() != cfg["vocab_size"]:
        raise ValueError(
            f"tokenizer vocab {tok.get_vocab_size()} != model vocab {cfg['vocab_size']} "
            "(tokenizer retrained after this checkpoint?)"
        )
    sd = torch.load(model_path, mmap=True, weights_only=True, map_location="cpu")
    sd = {k.removeprefix("_orig_mod."): (v.float() if v.dtype == torch.bfloat16 else v) for k, v in sd.items()}
    with torch.device("meta"), contextlib.redirect_stdout(sys.stderr):  # its prints must not break --format json
        model = GPT(GPTConfig(**{k: cfg[k] for k in CORE_KEYS}))
    model.to_empty(device="cpu")
    model.init_weights()
    model.load_state_dict(sd, strict=True, assign=True)
    model.eval()
    prompt = [tok.get_bos_token_id()] + tok.encode(PROMPT)
    with torch.no_grad():
        logits = model(torch.tensor([prompt], dtype=torch.long))
        if not bool(torch.isfinite(logits.float()).all()):
            raise ValueError("the model's logits for the prompt are NaN/Inf (non-finite weights?)")
        out = [int(t) for t in model.generate(prompt, max_tokens=max_tokens, temperature=0.0)]
    if any(not (0 <= t < cfg["vocab_size"]) for t in out):
        raise ValueError(f"generated token ids outside the vocab: {out}")
    return out, tok.decode(out)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0][:300]}" if text else type(exc).__name__


# -- the fact ---------------------------------------------------------------------------------------
def chat_smoke_fact(ctx: Any) -> SmokeOutcome:
    mode = ctx.config.get("smoke", "auto")
    if mode is False or mode == "false":
        raise FactUnavailable("chat smoke test disabled (--no-smoke)")
    forced = mode is True or mode == "true"
    checkpoints = ctx.get("checkpoints")
    found = final_model(checkpoints)
    if found is None:
        raise FactUnavailable("no complete checkpoint to load (checkpoint checks report why)")
    phase, pc, sf = found
    fc = pc.check_file(sf.model)
    if fc.unsafe:
        raise FactUnavailable(
            f"{sf.model} is not a plain tensor file; it is never loaded (checkpoint-unsafe reports it)"
        )
    meta, err = pc.meta(sf.meta)
    if err or not isinstance(meta, dict) or not isinstance(meta.get("model_config"), dict):
        raise FactUnavailable(f"{sf.meta} is invalid (checkpoint-meta-invalid reports it)")
    cfg = meta["model_config"]
    out = SmokeOutcome(phase=phase, model=sf.model, step=sf.step, route="bundled")
    tok_dir = Path(checkpoints.base_dir) / "tokenizer"
    vocab = None
    if (tok_dir / "token_bytes.pt").is_file():
        from preflight.inventory import token_bytes_vocab

        vocab = token_bytes_vocab(tok_dir / "token_bytes.pt")[0]
    problems = broken(fc, cfg, vocab)
    if problems:
        out.failure, out.message = "checkpoint", problems[0]
        out.fix = "pair the model with its own tokenizer/meta; if the weights are broken, rerun the phase"
        return out
    if not (tok_dir / "tokenizer.pkl").is_file():
        out.failure, out.message = (
            "checkpoint",
            f"no tokenizer at {tok_dir / 'tokenizer.pkl'}: the {phase} model cannot be used for chat",
        )
        out.fix = "python -m scripts.tok_train (or restore tokenizer/ from the run that trained the model)"
        return out
    misfit = bundled_fit(fc.tensors, cfg)
    unavailable = None if misfit else bundled_unavailable()
    if misfit is None and unavailable is None:
        return _run_bundled(ctx, out, meta, tok_dir, forced)
    reason = misfit or unavailable
    if not forced:
        raise FactUnavailable(f"{reason}; --smoke runs the {phase} model with the checkout's own code and Python")
    checkout, how = find_checkout(ctx)
    if checkout is None:
        raise FactUnavailable(f"{reason}, and {how}")
    python, phow = find_python(ctx, checkout)
    if python is None:
        raise FactUnavailable(f"{reason}, and {phow}")
    out.route, out.python, out.checkout = "checkout", python, str(checkout)
    out.why_route = f"{reason}: ran the code of {checkout} ({how}) with {phow}"
    timeout = float(ctx.config.get("smoke-timeout", 120.0))
    memory = int(ctx.config.get("smoke-memory", 16384))
    res = run_child(
        python, checkout, os.path.dirname(sf.model), sf.step, checkpoints.base_dir, timeout=timeout, memory_mb=memory
    )
    return classify_child(res, out, python, timeout, memory)


def _run_bundled(ctx: Any, out: SmokeOutcome, meta: dict, tok_dir: Path, forced: bool) -> SmokeOutcome:
    cfg = meta["model_config"]
    try:
        n = n_params(cfg)
    except (KeyError, TypeError, ValueError, ZeroDivisionError):
        raise FactUnavailable("model_config cannot describe a GPT (checkpoint-meta-invalid reports it)") from None
    limit = int(ctx.config.get("smoke-max-params", 50_000_000))
    if not forced and n > limit:
        raise FactUnavailable(f"model has {n:,} parameters > smoke-max-params {limit:,} (use --smoke to force)")
    out.why_route = "classic state dict: the bundled GPT holds it"
    start = time.monotonic()
    try:
        out.tokens, out.said = smoke_generate(out.model, meta, str(tok_dir / "tokenizer.pkl"))
        out.ok = True
    except Exception as exc:  # any failure to load or generate is the finding
        out.failure, out.message = "checkpoint", _first_line(exc)
        out.fix = "pair the model with its own tokenizer/meta; if the weights are broken, rerun the phase"
    out.seconds = time.monotonic() - start
    return out
