"""The chat smoke test's child process: load a checkpoint with the user's OWN nanochat code and
generate a few tokens. Run only by preflight.smoke, with the user's Python, never imported.

Standard library + the user's torch only: the user's environment need not have preflight.
``argv[1]`` is a JSON job: {"checkout", "checkpoint_dir", "step", "prompt", "max_tokens", "memory_mb", "cpu_s"}.
The last stdout line starting with MARKER carries the JSON outcome:
  {"ok": true, "tokens": [...], "text": "...", "prompt_tokens": n, "vocab_size": v}
  {"ok": false, "stage": "import|load|generate|nonfinite|vocab|refused", "type", "message", "tail"}
"""

import io
import json
import pickle
import sys
import traceback

MARKER = "@@PREFLIGHT-SMOKE@@ "


MAX_TOKENIZER_BYTES = 64 << 20  # a 65k-vocab tokenizer.pkl is ~1 MB
MAX_TOKENIZER_OPS = 4_000_000  # bounds what the opcodes can build (an amplifying pickle took 4.7 GB)


class _EncodingState:
    """Stands in for tiktoken.core.Encoding while unpickling: it only keeps the pickled state. tiktoken's
    own __setstate__ turns a *string* state into get_encoding(name), which downloads that encoding: code
    and network chosen by a data file. The Encoding is built afterwards from checked data."""

    def __setstate__(self, state):
        self.state = state


def _encoding_from_state(obj, path):
    import tiktoken.core

    state = getattr(obj, "state", None) if type(obj) is _EncodingState else None
    if isinstance(state, str):
        raise ValueError(
            f"{path} names the registered encoding {state[:40]!r} instead of holding one: "
            "loading it would download it; refused"
        )
    if not isinstance(state, dict):
        raise ValueError(f"{path} is not a pickled tiktoken Encoding")
    name, pat, ranks, special = (state.get(k) for k in ("name", "pat_str", "mergeable_ranks", "special_tokens"))
    if not (
        isinstance(name, str)
        and isinstance(pat, str)
        and isinstance(ranks, dict)
        and isinstance(special, dict)
        and all(type(k) is bytes and type(v) is int for k, v in ranks.items())
        and all(type(k) is str and type(v) is int for k, v in special.items())
    ):
        raise ValueError(f"{path}: the pickled Encoding state has the wrong shape")
    return tiktoken.core.Encoding(name=name, pat_str=pat, mergeable_ranks=ranks, special_tokens=special)


def _check_opcodes(data, path):
    import pickletools

    for count, _ in enumerate(pickletools.genops(data)):
        if count > MAX_TOKENIZER_OPS:
            raise ValueError(f"{path}: more than {MAX_TOKENIZER_OPS:,} pickle opcodes; not a tokenizer")


class _TokenizerUnpickler(pickle.Unpickler):
    """tokenizer.pkl is data: only a tiktoken Encoding may come out of it."""

    def find_class(self, module, name):
        if (module, name) == ("tiktoken.core", "Encoding"):
            return _EncodingState
        raise _Refused(
            f"tokenizer pickle references {module}.{name}; the smoke test unpickles only a tiktoken Encoding"
        )

    def persistent_load(self, pid):
        raise _Refused("tokenizer pickle uses persistent ids")


class _Refused(Exception):
    pass


def _restricted_load(file, **_kw):
    return _restricted_loads(file.read(MAX_TOKENIZER_BYTES + 1))


def _restricted_loads(data, **_kw):
    if len(data) > MAX_TOKENIZER_BYTES:
        raise _Refused(f"a pickle over {MAX_TOKENIZER_BYTES:,} bytes; the smoke test loads only a tokenizer")
    try:
        _check_opcodes(data, "tokenizer pickle")
        obj = _TokenizerUnpickler(io.BytesIO(data)).load()
        return _encoding_from_state(obj, "tokenizer pickle")
    except ValueError as exc:
        raise _Refused(str(exc)) from None


def _emit(doc):
    sys.stdout.flush()
    sys.stdout.write("\n" + MARKER + json.dumps(doc) + "\n")
    sys.stdout.flush()


def _failure(stage, exc, checkout):
    """The exception in one line, and its last three frames as 'file:line in func: code'."""
    tail = []
    frames = [fr for fr in traceback.extract_tb(exc.__traceback__) if fr.filename != __file__]  # not ours
    for fr in frames[-3:]:
        name = fr.filename
        if name.startswith(checkout.rstrip("/") + "/"):
            name = name[len(checkout.rstrip("/")) + 1 :]
        tail.append(f"{name}:{fr.lineno} in {fr.name}: {(fr.line or '').strip()}")
    message = " ".join(part.strip() for part in str(exc).splitlines() if part.strip())[:500]
    return {"ok": False, "stage": stage, "type": type(exc).__name__, "message": message, "tail": tail}


def _limit_self(memory_mb, cpu_s):
    """Set here, before any user code loads (a preexec_fn is unsafe in the threaded parent)."""
    import resource

    mem = int(memory_mb) << 20
    resource.setrlimit(resource.RLIMIT_AS, (mem, mem))
    resource.setrlimit(resource.RLIMIT_CPU, (int(cpu_s), int(cpu_s) + 5))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def main():
    job = json.loads(sys.argv[1])
    _limit_self(job["memory_mb"], job["cpu_s"])
    stage = "import"
    try:
        import torch

        real_load = torch.load

        def weights_only_load(*args, **kwargs):  # every torch.load in the user's code: tensors only
            kwargs["weights_only"] = True
            return real_load(*args, **kwargs)

        torch.load = weights_only_load
        pickle.load, pickle.loads = _restricted_load, _restricted_loads
        sys.path.insert(0, job["checkout"])
        from nanochat.checkpoint_manager import build_model

        stage = "load"
        model, tokenizer, meta = build_model(job["checkpoint_dir"], int(job["step"]), torch.device("cpu"), "eval")
        vocab = int(meta["model_config"]["vocab_size"])
        stage = "generate"
        prompt = [tokenizer.get_bos_token_id()] + list(tokenizer.encode(job["prompt"]))
        with torch.no_grad():
            logits = model(torch.tensor([prompt], dtype=torch.long))
            if isinstance(logits, (tuple, list)):
                logits = logits[0]
            if not bool(torch.isfinite(logits.float()).all()):
                _emit(
                    {
                        "ok": False,
                        "stage": "nonfinite",
                        "type": "ValueError",
                        "tail": [],
                        "message": "the model's logits for the prompt are NaN/Inf (non-finite weights?)",
                    }
                )
                return 0
            out = [int(t) for t in model.generate(prompt, max_tokens=int(job["max_tokens"]), temperature=0.0)]
    except _Refused as exc:
        _emit({"ok": False, "stage": "refused", "type": "Refused", "message": str(exc), "tail": []})
        return 0
    except BaseException as exc:  # the outcome is the report; the parent classifies it
        _emit(_failure(stage, exc, job["checkout"]))
        return 0
    bad = [t for t in out if not 0 <= t < vocab]
    if bad:
        _emit(
            {
                "ok": False,
                "stage": "vocab",
                "type": "ValueError",
                "tail": [],
                "message": f"generated token ids outside the vocab ({vocab}): {bad[:5]}",
            }
        )
        return 0
    try:
        text = tokenizer.decode(out)
    except Exception as exc:
        text = f"<undecodable: {type(exc).__name__}>"
    _emit({"ok": True, "tokens": out, "text": text, "prompt_tokens": len(prompt), "vocab_size": vocab})
    return 0


if __name__ == "__main__":
    sys.exit(main())
