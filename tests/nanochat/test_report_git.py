"""report.py's git facts come from git itself, run without a shell."""

from __future__ import annotations

import subprocess

from nanochat import report


def test_git_info_of_a_real_repository(tmp_path, monkeypatch):
    subprocess.run(["git", "init", "-q", "-b", "trunk", str(tmp_path)], check=True)
    subprocess.run(
        [
            "git",
            "-C",
            str(tmp_path),
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@t",
            "commit",
            "-q",
            "--allow-empty",
            "-m",
            "first line\n\nbody",
        ],
        check=True,
    )
    monkeypatch.chdir(tmp_path)
    info = report.get_git_info()
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=tmp_path).stdout
    assert info == {"branch": "trunk", "commit": head.strip(), "dirty": False, "message": "first line"}
    (tmp_path / "x.py").write_text("")
    assert report.get_git_info()["dirty"] is True


def test_commands_are_not_run_through_a_shell(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert report.run_command("echo $HOME; touch pwned") == "$HOME; touch pwned"
    assert not (tmp_path / "pwned").exists()
