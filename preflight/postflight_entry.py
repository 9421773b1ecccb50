"""`python -m preflight.postflight_entry ...` is the `postflight` command (for environments without the script)."""

from preflight.cli import postflight_main

if __name__ == "__main__":
    postflight_main()
