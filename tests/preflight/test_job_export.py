"""What a job gets from the shell that submits it, under sbatch's --export (measured on the local SLURM
in tests/slurm/test_unusual_jobs.py: NONE and a bare list pass only SLURM's variables and the named)."""

from __future__ import annotations

from preflight.script.jobenv import effective_export, passed_environ
from preflight.script.parser import parse_script

SHELL = {"NANOCHAT_BASE_DIR": "/scratch/me", "SLURM_CONF": "/etc/slurm.conf", "HOME": "/home/me", "FOO": "1"}


def test_export_values():
    assert passed_environ(SHELL, "ALL") == SHELL
    assert passed_environ(SHELL, "NONE") == {"SLURM_CONF": "/etc/slurm.conf", "HOME": "/home/me"}
    assert passed_environ(SHELL, "NANOCHAT_BASE_DIR")["NANOCHAT_BASE_DIR"] == "/scratch/me"
    assert "FOO" not in passed_environ(SHELL, "NANOCHAT_BASE_DIR")
    assert passed_environ(SHELL, "ALL,FOO=2")["FOO"] == "2" and passed_environ(SHELL, "ALL,FOO=2")["HOME"] == "/home/me"


def test_the_command_line_over_sbatch_export_over_the_directive(tmp_path):
    path = tmp_path / "job.sh"
    path.write_text("#!/bin/bash\n#SBATCH --export=NONE\necho hi\n")
    script = parse_script(path, cwd=tmp_path, environ={})
    assert effective_export(script, [], {}) == ("NONE", "line 2")
    assert effective_export(script, [], {"SBATCH_EXPORT": "ALL"}) == ("ALL", "$SBATCH_EXPORT")
    assert effective_export(script, ["--export=FOO"], {"SBATCH_EXPORT": "ALL"}) == ("FOO", "the command line")
