"""Property-based tests: for ANY input each reader returns a result or raises its module's typed error.

Readers: script parser, suppression parser, log indexer, config loader, meta validator (CK007 via
the runner: a check that raises shows up as status error), report parser, checkpoint header
inspector (symbolic pickle walker) and the parquet footer reader.
"""

from __future__ import annotations

import io
import json
import struct
import tempfile
import zipfile
from pathlib import Path

import factories
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
_TMP = tempfile.TemporaryDirectory(prefix="rel-props-")
TMP = Path(_TMP.name)

SHELL_BITS = [
    "#!/bin/bash\n",
    "#SBATCH ",
    "--gres=gpu:",
    "--time=",
    "--nodes=",
    "set -e",
    "export ",
    "=",
    "$",
    "${",
    "}",
    "$(",
    ")",
    "`",
    "'",
    '"',
    "\\",
    "\n",
    "\r\n",
    " ",
    "\t",
    "&",
    "&&",
    "||",
    ";",
    "|",
    "<<EOF\n",
    "EOF\n",
    "<<-'X'\n",
    "torchrun ",
    "--nproc_per_node=",
    "-m scripts.base_train",
    " -- ",
    "--depth=",
    "python -m ",
    "srun ",
    "wait",
    "bash ",
    "source ",
    "# preflight: disable=",
    "SB003",
    ",",
    "(",
    "{",
    "WANDB_API_KEY=",
    "hf_",
    "curl ",
    "if ",
    "then",
    "fi",
    "for x in",
    "do",
    "done",
    "8",
    "-1",
    "1e999",
    "\x00",
    "\ufeff",
    "é",
    "\u2028",
]
script_text = st.lists(st.one_of(st.sampled_from(SHELL_BITS), st.text(max_size=8)), max_size=60).map("".join)


# -- script parser --------------------------------------------------------------------------------
@SETTINGS
@given(script_text)
def test_script_parser_total(text):
    from preflight.script import parse_text

    model = parse_text(text)
    assert model is not None


@SETTINGS
@given(st.one_of(st.binary(max_size=2000), script_text.map(lambda s: s.encode("utf-8", "surrogatepass"))))
def test_script_file_parser_total(data):
    from preflight.script import parse_script

    p = TMP / "job.sh"
    p.write_bytes(data)
    model = parse_script(p, cwd=TMP)
    assert model is not None


# -- suppression parser ---------------------------------------------------------------------------
@SETTINGS
@given(script_text)
def test_suppression_parser_total(text):
    from preflight.suppress import parse_suppressions, suppression_for

    sups = parse_suppressions(text)
    for s in sups:
        assert s.line >= 1 and (s.file_wide or s.start <= s.end)
    suppression_for(sups, "SB003", "missing-set-e", 3)


# -- log indexer ------------------------------------------------------------------------------------
LOG_BITS = [
    factories.step_line("base", 3, 20),
    factories.step_line("sft", 2, 9),
    factories.step_line("mid", 1, 9),
    factories.step_line("rl", 1, 9),
    "Step 00005 | Validation bpb: 1.2345\n",
    "Overriding: run = x",
    "Traceback (most recent call last):",
    '  File "/x/scripts/base_train.py", line 3, in <module>',
    "torch.OutOfMemoryError: CUDA out of memory",
    "[rank0]: ",
    "\x1b[32m",
    "\x1b[0m",
    "\n",
    "\r\n",
    "\r",
    "slurmstepd: error: *** JOB 1 ON n CANCELLED AT 2025 DUE TO TIME LIMIT ***",
    "oom-kill",
    "Done! Downloaded: 3/8 shards",
    "Saved model parameters to: /b/base_checkpoints/d2/model_000020.pt",
    "loss: nan",
    "step 99999999999999999999",
    "Calculated number of iterations from target data:param ratio: 1e999",
    "Distributed world size: 0",
    "\xff",
    "\x00",
    "Autodetected device type: cuda",
    "Resuming optimization from step -5",
    "mfu: inf",
]
log_bytes = st.one_of(
    st.binary(max_size=4000),
    st.lists(st.one_of(st.sampled_from(LOG_BITS), st.text(max_size=10)), max_size=80).map(
        lambda xs: "".join(xs).encode("utf-8", "surrogatepass")
    ),
)


@SETTINGS
@given(log_bytes)
def test_log_indexer_total(data):
    from preflight.logindex import index_log

    p = TMP / "x.log"
    p.write_bytes(data)
    idx = index_log(p)
    assert idx.error is None
    json.dumps(idx.to_json(), allow_nan=True)  # the index is reportable


# -- config loader ----------------------------------------------------------------------------------
yaml_scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), st.text(max_size=20))
yaml_values = st.recursive(
    yaml_scalars,
    lambda c: st.one_of(st.lists(c, max_size=4), st.dictionaries(st.text(max_size=10), c, max_size=4)),
    max_leaves=20,
)
CONFIG_KEYS = [
    "select",
    "ignore",
    "extend-select",
    "severity",
    "fail-on",
    "profile",
    "plugins",
    "network",
    "timeout",
    "jobs",
    "deep",
    "smoke",
    "gpu",
    "mfu",
    "hourly-rate",
    "log-patterns",
    "slurm-timeout",
    "base-dir",
    "x",
]


@SETTINGS
@given(
    st.one_of(
        st.dictionaries(st.sampled_from(CONFIG_KEYS), yaml_values, max_size=5).map(lambda d: ("yaml", d)),
        st.text(max_size=300).map(lambda t: ("text", t)),
        st.lists(
            st.sampled_from(
                [
                    "a: ",
                    "&x ",
                    "*x",
                    "[",
                    "]",
                    "{",
                    "}",
                    "- ",
                    "\n",
                    "  ",
                    "!!python/name:os.system",
                    "!!binary",
                    "? ",
                    ": ",
                    "'",
                    '"',
                    "select",
                    "timeout",
                    "1e999",
                    "<<: *x",
                    "~",
                ]
            ),
            max_size=40,
        ).map(lambda xs: ("text", "".join(xs))),
    )
)
def test_config_loader_total(source):
    import yaml

    from preflight.config import ConfigError, load_config

    kind, value = source
    text = yaml.safe_dump(value) if kind == "yaml" else value
    p = TMP / "preflight.yaml"
    p.write_text(text, encoding="utf-8", errors="surrogatepass") if False else p.write_bytes(
        text.encode("utf-8", "surrogatepass")
    )
    try:
        cfg = load_config({}, config_path=p, environ={}, search=False)
    except ConfigError as exc:
        assert "\n" not in str(exc).strip() or len(str(exc)) < 5000
        return
    assert isinstance(cfg.values, dict)


# -- meta validator (CK007 and friends through the runner) ------------------------------------------
_BASE = TMP / "metarun"
_META = _BASE / "base" / "base_checkpoints" / "d2" / "meta_000020.json"
factories.write_run(_BASE / "base", phases=("base",), world_size=1, report=False)

meta_json = st.one_of(
    yaml_values.map(lambda v: json.dumps(v)),
    st.fixed_dictionaries(
        {},
        optional={
            "step": yaml_values,
            "model_config": st.one_of(
                yaml_values,
                st.fixed_dictionaries(
                    {},
                    optional={
                        k: yaml_scalars
                        for k in ("n_layer", "n_embd", "n_head", "n_kv_head", "vocab_size", "sequence_len")
                    },
                ),
            ),
            "val_bpb": yaml_scalars,
            "user_config": yaml_values,
            "dataloader_state_dict": yaml_values,
        },
    ).map(lambda d: json.dumps(d)),
    st.text(max_size=200),
)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(meta_json)
def test_meta_validator_total(text):
    from preflight.model import Status
    from preflight.testing import Scenario, run_scenario

    _META.write_bytes(text.encode("utf-8", "surrogatepass"))
    result = run_scenario(Scenario(stage="post", base_dir="base", config={"profile": "classic"}), _BASE, select=["CK"])
    errors = [(c.code, c.message) for c in result.checks if c.status == Status.ERROR]
    assert not errors, errors


# -- report parser ----------------------------------------------------------------------------------
REPORT_BITS = [
    "## ",
    "### ",
    "# nanochat training report",
    "| ",
    " |",
    "|---|",
    "| Metric | BASE | MID |",
    "| CORE | 0.2219 | - |",
    "Total wall clock time: ",
    "unknown",
    "nan",
    "inf",
    "- key: value",
    "timestamp: ",
    "Base model training",
    "Chat SFT",
    "Summary",
    "\n",
    "\r\n",
    "\x00",
    "\xff",
    "é",
]


@SETTINGS
@given(
    st.one_of(
        st.binary(max_size=3000),
        st.lists(st.one_of(st.sampled_from(REPORT_BITS), st.text(max_size=10)), max_size=80).map(
            lambda xs: "".join(xs).encode("utf-8", "surrogatepass")
        ),
    )
)
def test_report_parser_total(data):
    from preflight.reportmd import parse_report

    p = TMP / "report.md"
    p.write_bytes(data)
    rep = parse_report(p)
    assert rep is not None
    rep.to_json()


# -- checkpoint header inspector (never executes, never raises) ----------------------------------------
def _valid_ckpt_bytes() -> bytes:
    buf = io.BytesIO()
    import torch

    torch.save(factories.state_dict(factories.model_config(1, n_embd=64)), buf)
    return buf.getvalue()


_CKPT = _valid_ckpt_bytes()


def _data_pkl(zbytes: bytes) -> tuple[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(zbytes)) as z:
        name = next(n for n in z.namelist() if n.endswith("data.pkl"))
        return name, z.read(name)


def _rezip(name: str, pkl: bytes) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(_CKPT)) as src, zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as dst:
        for item in src.namelist():
            dst.writestr(item, pkl if item == name else src.read(item))
    return buf.getvalue()


@SETTINGS
@given(
    st.one_of(
        st.binary(max_size=3000),
        st.binary(max_size=2000).map(lambda b: b"\x80\x02" + b),  # looks like a bare pickle
        st.tuples(st.integers(0, len(_CKPT) - 1), st.binary(min_size=1, max_size=16)).map(
            lambda t: _CKPT[: t[0]] + t[1] + _CKPT[t[0] + len(t[1]) :]
        ),  # a real checkpoint with bytes flipped
        st.tuples(st.integers(0, 400), st.binary(min_size=1, max_size=8)).map(
            lambda t: (lambda n, p: _rezip(n, p[: t[0]] + t[1] + p[t[0] + len(t[1]) :]))(*_data_pkl(_CKPT))
        ),  # mutated data.pkl
    )
)
def test_checkpoint_inspector_total(data):
    from preflight.ckpt import inspect_torch_file

    p = TMP / "model_000001.pt"
    p.write_bytes(data)
    fc = inspect_torch_file(p)
    assert fc is not None


# -- parquet footer reader ------------------------------------------------------------------------------
@SETTINGS
@given(
    st.one_of(
        st.binary(max_size=600),
        st.binary(min_size=1, max_size=600).map(
            lambda f: b"PAR1" + b"\0" * 8 + f + struct.pack("<I", len(f)) + b"PAR1"
        ),
    )
)
def test_footer_reader_total(data):
    from preflight.parquet_footer import read_footer

    p = TMP / "shard_00000.parquet"
    p.write_bytes(data)
    footer, problem, _size = read_footer(p)
    assert (footer is None) == (problem is not None) or footer is not None


# -- run ledger reader ----------------------------------------------------------------------------------
ledger_json = st.one_of(
    st.fixed_dictionaries(
        {"schema_version": st.just(1), "job_id": st.just("42")},
        optional={
            "logs": yaml_values,
            "expected": yaml_values,
            "cwd": yaml_values,
            "script": yaml_values,
            "profile": yaml_values,
            "forced": yaml_values,
        },
    ).map(json.dumps),
    yaml_values.map(json.dumps),
    st.text(max_size=200),
)


@SETTINGS
@given(ledger_json)
def test_ledger_reader_total(text):
    """read_ledger returns a Ledger whose accessors work, or raises its typed ValueError."""
    from preflight.ledger import read_ledger

    p = TMP / "42.json"
    p.write_bytes(text.encode("utf-8", "surrogatepass"))
    try:
        led = read_ledger(p)
    except ValueError:
        return
    led.job_id, led.logs, led.expected, led.forced, led.cwd, led.script_path  # noqa: B018
    json.dumps(led.to_json())
