"""What the environment scripts a batch script sources set, where that is known: a virtualenv's ``activate``,
conda's shell hook, rustup's ``~/.cargo/env`` and the init scripts of environment modules (Lmod, Tcl modules)
set only their own variables (any other sourced file may set anything)."""

from __future__ import annotations

import re

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
# `source /etc/profile.d/modules.sh`, `. /usr/share/lmod/lmod/init/bash`: the `module` function and its own state
_MODULES_INIT = re.compile(
    r"(?:profile\.d/(?:\w+_)?(?:modules|lmod)\.sh|(?:lmod|[Mm]odules)\S*/init/(?:bash|sh|profile))$"
)
_MODULES_SETS = ("MODULEPATH", "MODULESHOME", "LMOD_CMD", "LMOD_DIR", "LMOD_PKG", "BASH_ENV", "MANPATH", "PATH")


def known_sets(path: str) -> tuple[str, ...] | None:
    """The variables sourcing ``path`` sets, for an environment script whose effect is known; None otherwise."""
    if path.endswith("bin/activate"):
        return _ACTIVATE_SETS
    if path.endswith(_CONDA_HOOKS):
        return _CONDA_HOOK_SETS
    if path.endswith(_CARGO_ENV):
        return ("PATH",)
    if _MODULES_INIT.search(path):
        return _MODULES_SETS
    return None
