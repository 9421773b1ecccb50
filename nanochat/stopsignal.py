"""Stop signals: SLURM sends SIGUSR1 (with --signal) or SIGTERM before the time limit.

The handler only sets a flag; the training loop saves at the next step boundary and exits 0.
Torch-free on purpose: the trainers install it before importing torch, which takes seconds, so a
signal forwarded right after the launch does not kill the process before its handler exists.
"""

import signal

_stop_signal = None


def _handle_stop(signum, frame):
    global _stop_signal
    _stop_signal = signal.Signals(signum).name


def install_stop_handlers():
    for sig in (signal.SIGUSR1, signal.SIGTERM):
        signal.signal(sig, _handle_stop)


def requested():
    """The name of the stop signal received so far (this process only), else None."""
    return _stop_signal
