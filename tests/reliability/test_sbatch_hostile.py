"""`preflight sbatch` on hostile scripts, with a FAKE sbatch first on PATH (nothing is ever submitted or run:
some corpus scripts contain `$(rm -rf /)` in heredocs). Refused without --force; with --force the
ledger is written atomically as valid JSON whatever the script holds."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
import rel_corpus as corpus
from rel_helpers import check_survived, run_bounded

CASES = [
    "binary-elf",
    "utf16-bom",
    "latin1",
    "crlf",
    "unterminated-double",
    "long-directive",
    "heredocs",
    "weird-directives",
    "self-include",
]


def _fake_slurm(bin_dir: Path, calls: Path) -> None:
    bin_dir.mkdir()
    sbatch = bin_dir / "sbatch"
    sbatch.write_text(f"""#!/bin/sh
echo "$@" >> {calls}
case " $* " in *" --test-only "*) echo "sbatch: Job 4242 to start at 2026-01-01T00:00:00" >&2; exit 0;; esac
echo 4242
""")
    scontrol = bin_dir / "scontrol"
    scontrol.write_text("#!/bin/sh\necho 'slurm_load_jobs error: Invalid job id specified' >&2\nexit 1\n")
    for p in (sbatch, scontrol):
        p.chmod(p.stat().st_mode | stat.S_IXUSR)


@pytest.mark.parametrize("force", [False, True], ids=["gated", "forced"])
@pytest.mark.parametrize("name", CASES)
def test_sbatch_hostile_script(name, force, tmp_path, cli, tally):
    calls = tmp_path / "sbatch-calls.txt"
    _fake_slurm(tmp_path / "bin", calls)
    corpus.script_corpus()[name](tmp_path / "job.sh")
    args = [
        "preflight",
        "sbatch",
        *(["--force"] if force else []),
        "--base-dir",
        str(tmp_path / "b"),
        "job.sh",
        "--time=00:01:00",
    ]
    env = {"PATH": f"{tmp_path / 'bin'}:/usr/bin:/bin", "SLURM_CONF": "/nonexistent"}
    proc = run_bounded(cli, tally, "batch script (sbatch)", *args, cwd=tmp_path, env=env, timeout=90)
    check_survived(tally, "batch script (sbatch)", proc, allowed=(0, 1, 2) if force else (1, 2))
    ledgers = list((tmp_path / ".preflight" / "jobs").glob("*")) if (tmp_path / ".preflight").exists() else []
    if not force:
        assert not calls.exists() or "--parsable" not in calls.read_text(), "submitted although preflight refused"
        assert not ledgers, f"a ledger was written for a refused job: {ledgers}"
        return
    if proc.returncode == 0:
        assert [p.name for p in ledgers] == ["4242.json"], f"ledger dir holds {[p.name for p in ledgers]}"
        doc = json.loads(ledgers[0].read_text(encoding="utf-8"))
        assert doc["job_id"] == "4242" and doc["forced"] is True
        assert proc.stdout.strip().splitlines()[-1] == "4242"
