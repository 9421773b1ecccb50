"""Malformed-input corpus: factories that write each hostile input into a tmp dir (nothing committed).

Every factory is ``name -> writer(path)``; the writer creates the file at ``path`` (parents made).
Sizes are kept small except where size is the point (50 MB log line, 100 MB script).
"""

from __future__ import annotations

import io
import json
import pickle
import random
import struct
import zipfile
from collections.abc import Callable
from pathlib import Path

import factories

Writer = Callable[[Path], None]
RNG_SEED = 1234


def _rand(n: int, seed: int = RNG_SEED) -> bytes:
    return random.Random(seed).randbytes(n)


def _mk(path: Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


# -- parquet shards -------------------------------------------------------------------------------
def valid_shard_bytes(rows: int = 64, column: str = "text", row_group_size: int = 1024) -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq

    buf = io.BytesIO()
    table = pa.table({column: pa.array([f"document {i} " * 5 for i in range(rows)], pa.string())})
    pq.write_table(
        table, buf, row_group_size=row_group_size, compression="zstd", use_dictionary=False, write_statistics=False
    )
    return buf.getvalue()


def _shard_writer(make: Callable[[], bytes]) -> Writer:
    return lambda p: _mk(p).write_bytes(make())


def _truncated(frac: float | None = None, keep: int | None = None) -> Callable[[], bytes]:
    def make() -> bytes:
        data = valid_shard_bytes()
        n = keep if keep is not None else int(len(data) * frac)
        return data[:n]

    return make


def _footer_len_outside() -> bytes:
    data = bytearray(valid_shard_bytes())
    data[-8:-4] = struct.pack("<I", 0xFFFFFFF0)
    return bytes(data)


def _footer_len_whole_file() -> bytes:
    data = bytearray(valid_shard_bytes())
    data[-8:-4] = struct.pack("<I", len(data) - 8)
    return bytes(data)


def _garbage_with_magic(n: int = 4096) -> bytes:
    body = _rand(n)
    footer = _rand(200, seed=7)
    return b"PAR1" + body + footer + struct.pack("<I", len(footer)) + b"PAR1"


def _footer_garbage_thrift() -> bytes:
    """A real file whose footer bytes are overwritten with random bytes (length kept)."""
    data = bytearray(valid_shard_bytes())
    flen = struct.unpack("<I", data[-8:-4])[0]
    data[-8 - flen : -8] = _rand(flen, seed=99)
    return bytes(data)


def _footer_deep_nesting() -> bytes:
    """A footer of nested thrift structs 100k deep (a recursive-descent reader must not overflow)."""
    footer = b"\x1c" * 100_000 + b"\x00" * 100_000  # field 1, type struct, repeated
    return b"PAR1" + b"\x00" * 16 + footer + struct.pack("<I", len(footer)) + b"PAR1"


def _footer_huge_list() -> bytes:
    """A footer announcing a list of 2**31 elements in a few bytes."""
    footer = b"\x19\xfc\xff\xff\xff\x07" + b"\x00"  # field 1 list, size varint 2**31-1, elem type 12
    return b"PAR1" + b"\x00" * 16 + footer + struct.pack("<I", len(footer)) + b"PAR1"


def _empty_row_groups() -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq

    buf = io.BytesIO()
    pq.write_table(pa.table({"text": pa.array([], pa.string())}), buf)
    return buf.getvalue()


SHARDS: dict[str, Writer] = {
    "zero-bytes": _shard_writer(lambda: b""),
    "three-bytes": _shard_writer(lambda: b"PAR"),
    "trunc-head-10": _shard_writer(_truncated(keep=10)),
    "trunc-25pct": _shard_writer(_truncated(0.25)),
    "trunc-50pct": _shard_writer(_truncated(0.5)),
    "trunc-minus-1": _shard_writer(lambda: valid_shard_bytes()[:-1]),
    "trunc-minus-8": _shard_writer(lambda: valid_shard_bytes()[:-8]),
    "garbage-with-magic": _shard_writer(_garbage_with_magic),
    "footer-random-thrift": _shard_writer(_footer_garbage_thrift),
    "footer-deep-nesting": _shard_writer(_footer_deep_nesting),
    "footer-huge-list": _shard_writer(_footer_huge_list),
    "wrong-column": _shard_writer(lambda: valid_shard_bytes(column="content")),
    "empty-row-groups": _shard_writer(_empty_row_groups),
    "footer-len-outside": _shard_writer(_footer_len_outside),
    "footer-len-whole-file": _shard_writer(_footer_len_whole_file),
    "random-bytes": _shard_writer(lambda: _rand(8192)),
}


# -- checkpoints ---------------------------------------------------------------------------------
def _valid_model(p: Path) -> None:
    factories.write_model(p, factories.model_config(2))


def _trunc_model(frac: float) -> Writer:
    def w(p: Path) -> None:
        _valid_model(p)
        factories.truncate(p, frac)

    return w


def _zip_not_torch(p: Path) -> None:
    with zipfile.ZipFile(_mk(p), "w") as z:
        z.writestr("readme.txt", "this is a zip, not a torch checkpoint\n")


def _wrong_shapes(p: Path) -> None:
    cfg = factories.model_config(2)
    wrong = dict(cfg, n_embd=cfg["n_embd"] * 2, n_head=cfg["n_head"] * 2, n_kv_head=cfg["n_kv_head"] * 2)
    factories.write_model(p, wrong)


def _plain_pickle_payload(marker: Path) -> Writer:
    return lambda p: _mk(p).write_bytes(factories.malicious_pickle(marker))


def _torch_zip_payload(marker: Path) -> Writer:
    return lambda p: factories.malicious_torch_zip(p, marker) and None


def _zip_bomb_ish(p: Path) -> None:
    """A torch-style zip whose data.pkl claims a tensor storage of 2**40 bytes."""
    with zipfile.ZipFile(_mk(p), "w") as z:
        z.writestr("archive/data.pkl", b"\x80\x02}q\x00.")  # an empty dict, but a bogus storage entry below
        z.writestr("archive/data/0", b"\x00" * 16)
        z.writestr("archive/version", "3\n")


def checkpoint_corpus(marker: Path) -> dict[str, Writer]:
    return {
        "zero-bytes": lambda p: _mk(p).write_bytes(b""),
        "trunc-10pct": _trunc_model(0.1),
        "trunc-50pct": _trunc_model(0.5),
        "trunc-99pct": _trunc_model(0.99),
        "random-bytes": lambda p: _mk(p).write_bytes(_rand(20000)),
        "zip-not-torch": _zip_not_torch,
        "zip-empty-pickle": _zip_bomb_ish,
        "wrong-shapes": _wrong_shapes,
        "pickle-os-system": _plain_pickle_payload(marker),
        "torch-zip-os-system": _torch_zip_payload(marker),
    }


# -- meta JSON ------------------------------------------------------------------------------------
def meta_corpus() -> dict[str, Writer]:
    good = factories.meta("base", 20, factories.model_config(2))

    def text(s: str | bytes) -> Writer:
        return lambda p: _mk(p).write_bytes(s.encode() if isinstance(s, str) else s)

    return {
        "not-json": text("this is not json {"),
        "empty": text(""),
        "binary": text(_rand(500)),
        "a-list": text("[1, 2, 3]"),
        "null": text("null"),
        "wrong-types": text(json.dumps(dict(good, step="twenty", model_config="d20"))),
        "model-config-wrong-types": text(
            json.dumps(dict(good, model_config={k: str(v) + "x" for k, v in good["model_config"].items()}))
        ),
        "huge-float-1e999": text(json.dumps(good).replace('"step": 20', '"step": 1e999')),
        "huge-int-10e400": text(json.dumps(good).replace('"step": 20', '"step": ' + "1" + "0" * 400)),
        "huge-int-vocab": text(json.dumps(good).replace(str(good["model_config"]["vocab_size"]), "9" * 5000, 1)),
        "model-config-inf": text(
            json.dumps(dict(good, model_config=dict(good["model_config"], vocab_size=1e308 * 10)))
        ),
        "model-config-zero-heads": text(
            json.dumps(dict(good, model_config=dict(good["model_config"], n_head=0, n_kv_head=0, n_layer=-1)))
        ),
        "model-config-huge-layers": text(
            json.dumps(dict(good, model_config=dict(good["model_config"], n_layer=10**9)))
        ),
        "nan-literal": text(json.dumps(good).replace('"step": 20', '"step": NaN')),
        "deep-nesting-100k": text('{"model_config": ' + "[" * 100_000 + "]" * 100_000 + "}"),
        "invalid-utf8": text(b'{"step": 20, "x": "\xff\xfe"}'),
    }


# -- tokenizer.pkl -----------------------------------------------------------------------------
def tokenizer_corpus(marker: Path) -> dict[str, Writer]:
    class _Exec:
        def __reduce__(self):
            return (exec, (f"open({str(marker)!r}, 'w').write('x')",))

    return {
        "os-system": lambda p: _mk(p).write_bytes(factories.malicious_pickle(marker)),
        "exec-payload": lambda p: _mk(p).write_bytes(pickle.dumps(_Exec())),
        "zero-bytes": lambda p: _mk(p).write_bytes(b""),
        "random-bytes": lambda p: _mk(p).write_bytes(_rand(3000)),
        "truncated": lambda p: _mk(p).write_bytes(pickle.dumps({"a": list(range(1000))})[:100]),
        "plain-dict": lambda p: _mk(p).write_bytes(pickle.dumps({"not": "an encoding"})),
    }


# -- logs ------------------------------------------------------------------------------------------
def _good_log() -> str:
    return factories.run_log(phases=("base",))


def log_corpus() -> dict[str, Writer]:
    good = _good_log()
    ansi = "".join(
        f"\x1b[{i % 108}m\x1b[2K\x1b[1;{i}H\x1b]0;title\x07{line}\n" for i, line in enumerate(good.splitlines())
    )
    return {
        "random-bytes": lambda p: _mk(p).write_bytes(_rand(1 << 20)),
        "invalid-utf8": lambda p: _mk(p).write_bytes(good.encode().replace(b"step", b"st\xff\xfep")),
        "nul-bytes": lambda p: _mk(p).write_bytes(good.encode().replace(b"\n", b"\x00\n")),
        "single-50MB-line": lambda p: _write_long_line(p, 50 * 1024 * 1024),
        "ansi-noise": lambda p: _mk(p).write_text(ansi),
        "crlf": lambda p: _mk(p).write_bytes(good.replace("\n", "\r\n").encode()),
        "cr-only": lambda p: _mk(p).write_bytes(good.replace("\n", "\r").encode()),
        "empty": lambda p: _mk(p).write_bytes(b""),
        "no-trailing-newline": lambda p: _mk(p).write_text(good.rstrip("\n")),
        "traceback-unterminated": lambda p: _mk(p).write_text(good + "Traceback (most recent call last):\n"),
        "step-line-huge-numbers": lambda p: _mk(p).write_text(
            good + "step 99999999999999999999999/00000 (1e999%) | loss: 1e999 | dt: -0ms | tok/sec: 9" * 3 + "\n"
        ),
        # more digits than int() converts (4,300): every line the index reads a number from
        "numbers-past-int-limit": lambda p: _mk(p).write_text(good + _past_int_limit_lines()),
    }


def _past_int_limit_lines() -> str:
    n = "9" * 5000
    lines = [
        f"Resuming optimization from step {n}",
        f"Calculated number of iterations from target data:param ratio: {n}",
        f"Calculated number of steps: {n}",
        f"Number of parameters: {n}",
        f"Distributed world size: {n}",
        f"Done! Downloaded: {n}/{n} shards",
        f"step {n}/00020 (1.00%) | loss: 2.5 | lrm: 1.00 | dt: 5.0ms | tok/sec: 1,000 | mfu: 1.0 | total time: 0.00m",
        f"step 00001/{n} (1.00%) | loss: 2.5 | dt: 5ms",
        f"step {n} (1.00%) | loss: 2.5 | dt: 5ms",
        f"Step {n}/10 | Training loss: 1.0| lrm: 1.0",
        f"Step {n} | Validation bpb: 1.0",
        f"Saved model checkpoint to /x/base_checkpoints/d20/model_{n}.pt",
        f"Loading model from /x/base_checkpoints/d20 with step {n}",
        "Total batch size 524,288 => gradient accumulation steps: 1",
        f"[rank{n}]: Traceback (most recent call last):",
        f'[rank{n}]:   File "/x/scripts/mid_train.py", line {n}, in <module>',
        f"[rank{n}]: ValueError: {n}",
        "torch.distributed.elastic.multiprocessing.errors.ChildFailedError: scripts.mid_train FAILED",
        f"  exitcode  : -{n} (pid: 1)",
    ]
    return "\n".join(lines) + "\n"


def _write_long_line(p: Path, n: int) -> None:
    with open(_mk(p), "wb") as f:
        f.write(_good_log().encode())
        chunk = b"x" * (1 << 20)
        for _ in range(n // len(chunk)):
            f.write(chunk)
        f.write(b"\nstep 00001/00020 (5.00%) | loss: 3.5\n")


def write_big_log(p: Path, size: int) -> None:
    """``size`` bytes of realistic log lines (the 1 GB case runs only under -m slow)."""
    block = ("\n".join(factories.phase_log("base", steps=2000, planned=5000)) + "\n").encode()
    with open(_mk(p), "wb") as f:
        written = 0
        while written < size:
            f.write(block)
            written += len(block)


# -- batch scripts -------------------------------------------------------------------------------
GOOD_SCRIPT = (
    "#!/bin/bash\n#SBATCH --gres=gpu:8\n#SBATCH --time=06:00:00\nset -euo pipefail\n"
    "export OMP_NUM_THREADS=1\n"
    "torchrun --standalone --nproc_per_node=8 -m scripts.base_train -- --depth=20\n"
)


def script_corpus() -> dict[str, Writer]:
    def text(s: str | bytes) -> Writer:
        return lambda p: _mk(p).write_bytes(s.encode() if isinstance(s, str) else s)

    heredoc = GOOD_SCRIPT + "cat <<EOF > cfg.txt\n$(rm -rf /)\n`touch x`\nEOF\ncat <<'EOT'\nunterminated heredoc\n"
    return {
        "binary-elf": text(b"\x7fELF\x02\x01\x01" + _rand(5000)),
        "random-no-nul": text(bytes(b if b else 1 for b in _rand(5000))),
        "latin1": text(GOOD_SCRIPT.encode() + b"# caf\xe9\n"),
        "crlf": text(GOOD_SCRIPT.replace("\n", "\r\n")),
        "utf16-bom": text(GOOD_SCRIPT.encode("utf-16")),
        "empty": text(""),
        "only-shebang": text("#!/bin/bash\n"),
        "unterminated-double": text(GOOD_SCRIPT + 'echo "never closed\n'),
        "unterminated-single": text(GOOD_SCRIPT + "echo 'never closed\n"),
        "unterminated-backtick": text(GOOD_SCRIPT + "echo `never closed\n"),
        "unterminated-subshell": text(GOOD_SCRIPT + "X=$(echo (\n"),
        "heredocs": text(heredoc),
        "trailing-backslash": text(GOOD_SCRIPT + "torchrun \\\n"),
        "long-line-1MB": text(GOOD_SCRIPT + "echo " + "a" * (1 << 20) + "\n"),
        "long-directive": text("#!/bin/bash\n#SBATCH --job-name=" + "n" * 200_000 + "\n" + GOOD_SCRIPT),
        "many-lines-200k": text(GOOD_SCRIPT + "echo hi\n" * 200_000),
        "deep-nesting": text(GOOD_SCRIPT + "echo " + "$(" * 5000 + ")" * 5000 + "\n"),
        "brace-bomb": text(GOOD_SCRIPT + "echo " + "{a,b}" * 40 + "\n"),
        "weird-directives": text(
            "#!/bin/bash\n#SBATCH\n#SBATCH --gres=gpu:99999999999999999999\n"
            "#SBATCH --nodes=-1\n#SBATCH --time=99999999:99:99\n#SBATCH --ntasks-per-node=0\n"
            "torchrun --nproc_per_node=0 -m scripts.base_train -- --depth=99999999999999999999\n"
        ),
        "huge-depth": text(GOOD_SCRIPT.replace("--depth=20", "--depth=1e999")),
        # more digits than int() converts (4,300), an infinite float, digits that are not ASCII
        "numbers-past-int-limit": text(
            "#!/bin/bash\n#SBATCH --nodes=N\n#SBATCH --gres=gpu:N\n#SBATCH --gpus-per-node=h100:N\n"
            "#SBATCH --ntasks-per-node=N\n#SBATCH --cpus-per-task=N\n#SBATCH --time=N:00:00\n"
            "shift N\necho $N\nsrun torchrun --nnodes=N --nproc_per_node=N --rdzv-backend=c10d "
            "--rdzv-endpoint=$(scontrol show hostnames $SLURM_JOB_NODELIST | head -n 1):N "
            "-m scripts.base_train -- --depth=N --device_batch_size=inf --num_iterations=N --save_every=N\n"
            "python -m nanochat.dataset -n N\n".replace("N", "9" * 5000)
        ),
        "unicode-digits": text(
            "#!/bin/bash\n#SBATCH --nodes=\u00b2\n#SBATCH --gres=gpu:\u0663\nshift \u00b2\n"
            "torchrun --nproc_per_node=\u00b2 --rdzv-endpoint=h:\u0663 -m scripts.base_train -- --depth=\u00b2\n"
        ),
        "self-include": lambda p: _mk(p).write_text(GOOD_SCRIPT + f"bash {p.name}\nsource ./{p.name}\n"),
        "script-100MB": lambda p: _write_big_script(p, 100 * 1024 * 1024),
    }


def _write_big_script(p: Path, size: int) -> None:
    with open(_mk(p), "wb") as f:
        f.write(GOOD_SCRIPT.encode())
        line = b"echo padding padding padding padding padding padding padding\n"
        f.write(line * (size // len(line)))


# -- config ---------------------------------------------------------------------------------------
def config_corpus() -> dict[str, str | bytes]:
    laughs = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 12):
        laughs.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]")
    laughs.append("select: *a11")
    return {
        "invalid-yaml": "select: [SB001\nfail-on: : :\n",
        "tabs": "select:\n\t- SB001\n",
        "binary": _rand(2000),
        "not-utf8": b"select: [SB001]\n# caf\xe9\n",
        "billion-laughs": "\n".join(laughs) + "\n",
        "laughs-in-unknown-key": "\n".join(laughs).replace("select: *a11", "x-unknown: *a11") + "\n",
        "wrong-types": "timeout: fast\njobs: [1, 2]\nselect: 7\nseverity: error\n",
        "negative-numbers": "timeout: -5\njobs: 0\nmfu: 1e999\n",
        "unknown-keys": "selcet: [SB001]\nfoo: bar\n",
        "top-level-list": "- a\n- b\n",
        "top-level-scalar": "42\n",
        "python-object-tag": "select: !!python/object/apply:os.system ['touch MARKER']\n",
        "deep-nesting": "select: " + "[" * 10000 + "]" * 10000 + "\n",
        "huge-int": "jobs: " + "9" * 5000 + "\n",
        "severity-bad-value": "severity: {SB003: catastrophic}\n",
        "plugins-nonexistent": "plugins: [/nonexistent/dir]\n",
        "fail-on-bad": "fail-on: sometimes\n",
        "empty": "",
        "only-comment": "# nothing\n",
        "duplicate-keys": "select: [SB001]\nselect: [SB002]\n",
    }
