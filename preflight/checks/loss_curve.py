"""LOG012: a training loss above what a model guessing every token at random scores: the run diverged.

The points are the training curves' (the ``series`` fact, collected in the log index's own pass).
"""

from __future__ import annotations

import math
from collections.abc import Iterator

from preflight.model import Finding
from preflight.registry import check

# nanochat's tokenizers have 2^15 or 2^16 tokens (a fork's few more): a loss above ln(2^16) is worse than a
# uniform guess for any of them. The logs rarely name the vocabulary, so the largest is the line.
UNIFORM_LOSS = math.log(65536)
# a model trained from scratch starts at about ln(vocab) and falls below it within tens of steps; mid and SFT
# start from a trained model, far below it
FROM_SCRATCH_WARMUP_STEPS = 100
CURVE_PHASES = ("base", "mid", "sft")


@check("LOG012", "loss-diverged", stage="post", severity="error")
def loss_diverged(series) -> Iterator[Finding]:
    """
    What it checks: a logged training loss above ln(65536) = 11.09, what a model that gives every
    token of nanochat's vocabulary the same probability scores: in mid and SFT at any step (they
    start from a trained model), in base training after its first 100 steps.

    Why it matters: the run diverged. The loss may settle lower again (an EMA of a model that
    relearned unigram statistics), so the end of the log looks like training; every checkpoint
    saved after the blow-up is worse than the one the phase started from, and later phases build
    on it.

    Example:
        step 00001 (0.04%) | loss: 13.070236 | lrm: 1.00 | ...
        step 00002 (0.08%) | loss: 16.036624 | lrm: 1.00 | ...

    How to fix: do not build on what the phase saved after that step; check the checkpoint it
    started from (model tag, step), then rerun it with a lower learning rate.
    """
    for ps in series.phases:
        if ps.phase not in CURVE_PHASES:
            continue
        skip = FROM_SCRATCH_WARMUP_STEPS if ps.phase == "base" else 0
        hit = next(filter(None, (_first_above(attempt, skip) for attempt in ps.attempts)), None)
        if hit is None:
            continue
        attempt, step, loss, worst = hit
        peak = f" (up to {worst:.2f})" if worst > loss else ""
        yield Finding(
            f"{ps.phase}: training loss {loss:.2f} at step {step}{peak}, above ln(65536) = {UNIFORM_LOSS:.2f}, "
            "what a model guessing every token at random scores: training diverged"
            + (" from the model it loaded" if ps.phase != "base" else ""),
            path=attempt.log,
            line=attempt.start_line,
            fix=f"do not build on what {ps.phase} saved after step {step}; check the checkpoint it started "
            "from (model tag, step), then rerun it with a lower learning rate",
        )


def _first_above(attempt, skip: int):
    """(attempt, step, loss, highest loss) of the first point of a process run above a uniform guess, or None."""
    cols = attempt.points.columns()
    above = [(s, v) for s, v in zip(cols["step"], cols["loss"], strict=False) if s >= skip and v > UNIFORM_LOSS]
    if not above:
        return None
    return attempt, int(above[0][0]), above[0][1], max(v for _s, v in above)
