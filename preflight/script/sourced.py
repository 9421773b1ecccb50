"""What the environment scripts a batch script sources set, where that is known: a virtualenv's ``activate``,
conda's shell hook and rustup's ``~/.cargo/env`` set only their own variables (any other sourced file may set
anything)."""

from __future__ import annotations

# `source .venv/bin/activate` (virtualenv, venv, uv)
_ACTIVATE_SETS = (
    "VIRTUAL_ENV",
    "VIRTUAL_ENV_PROMPT",
    "PATH",
    "PS1",
    "PYTHONHOME",
    "_OLD_VIRTUAL_PATH",
    "_OLD_VIRTUAL_PS1",
)
# `source $CONDA_BASE/etc/profile.d/conda.sh`: the `conda` function and these
_CONDA_HOOK_SETS = ("CONDA_EXE", "CONDA_PYTHON_EXE", "CONDA_SHLVL", "_CE_M", "_CE_CONDA", "PATH")
_CONDA_HOOKS = ("etc/profile.d/conda.sh", "etc/profile.d/mamba.sh")
# `source "$HOME/.cargo/env"` (rustup, to build rustbpe): it puts ~/.cargo/bin on PATH and nothing else
_CARGO_ENV = ".cargo/env"


def known_sets(path: str) -> tuple[str, ...] | None:
    """The variables sourcing ``path`` sets, for an environment script whose effect is known; None otherwise."""
    if path.endswith("bin/activate"):
        return _ACTIVATE_SETS
    if path.endswith(_CONDA_HOOKS):
        return _CONDA_HOOK_SETS
    if path.endswith(_CARGO_ENV):
        return ("PATH",)
    return None
