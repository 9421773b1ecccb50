"""nanochat-preflight: catch nanochat training-job failures before sbatch, diagnose them after."""

__version__ = "0.1.0"
