"""
The classic nanochat configurator: override a script's module-level settings from the command line.

    python -m nanochat.base_train --depth=12 --run=dummy
    python -m nanochat.base_train my_config.py --depth=12

Each `--key=value` prints `Overriding: key = value`. The value goes through ast.literal_eval
(falling back to the raw string), and its type must match the default's type exactly.
A positional argument is a Python config file that is exec'd over the settings.
Errors (unknown key, missing '=', type mismatch) exit with a message that says what to do.
"""

import sys
from ast import literal_eval

from nanochat.common import print0


def _fail(msg):
    raise SystemExit(f"configurator error: {msg}")


def configure(settings, argv=None):
    """settings: the script's globals(); only keys of simple types (int/float/bool/str) are configurable."""
    argv = sys.argv[1:] if argv is None else argv
    keys = [k for k, v in settings.items() if not k.startswith("_") and isinstance(v, (int, float, bool, str))]
    for arg in argv:
        if not arg.startswith("--"):
            # a config file: exec it over the settings
            print0(f"Overriding config with {arg}:")
            with open(arg) as f:
                source = f.read()
            print0(source)
            exec(source, settings)
            continue
        if "=" not in arg:
            _fail(f"argument '{arg}' has no '='. Write {arg}=VALUE (the configurator only takes --key=value).")
        key, val = arg[2:].split("=", 1)
        if key not in keys:
            _fail(f"Unknown config key: {key}. Valid keys: {', '.join(sorted(keys))}")
        try:
            attempt = literal_eval(val)
        except (SyntaxError, ValueError):
            attempt = val  # a bare string such as --run=dummy
        default = settings[key]
        if type(attempt) is not type(default):
            _fail(
                f"Type mismatch for --{key}: got {type(attempt).__name__} ({val!r}), "
                f"expected {type(default).__name__} like the default {default!r}"
            )
        print0(f"Overriding: {key} = {attempt}")
        settings[key] = attempt
    return {k: settings[k] for k in keys}
