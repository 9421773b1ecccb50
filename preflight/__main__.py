"""`python -m preflight ...` is the `preflight` command."""

from preflight.cli import preflight_main

preflight_main()
