"""The training curves' checks: LOG012, a loss above what a model guessing every token at random scores (the run
diverged); LOG016, a loss below what web text allows (the model sees its targets); LOG017, a learning-rate schedule
run past its end; LOG018, a fine-tuning phase that made its validation loss worse; LOG019, an RL run that never earned
a reward.

The points are the training curves' (the ``series`` fact, collected in the log index's own pass); LOG017 reads the
last step line of each process.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

from preflight.model import Finding
from preflight.phases import TRAIN_PHASES
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


# pretraining on web text: nanochat's largest runs reach about 0.7 bits per byte, and a smaller model stays above
# that. Far below it (0.002 seen in real logs) the model reads the tokens it predicts: a leak, not learning. The
# training loss's line is the same bound in nats per token (about 4.5 bytes a token).
MIN_BASE_BPB = 0.3
MIN_BASE_LOSS = 0.5


def impossibly_low(series) -> str | None:
    """What of base training's curve no web-text model reaches ("validation bpb 0.0048 at step 250, below 0.3"),
    else None."""
    ps = series.get("base") if series is not None else None
    if ps is None:
        return None
    kind, steps, values = ps.val()
    hit = next(((s, v) for s, v in zip(steps, values, strict=False) if s > 0 and v < MIN_BASE_BPB), None)
    if hit is not None and kind == "bpb":
        return f"validation bpb {hit[1]:.4g} at step {int(hit[0])}, below {MIN_BASE_BPB}"
    if steps:
        return None
    xs, ys = ps.column("loss")
    low = next(
        ((s, v) for s, v in zip(xs, ys, strict=False) if s >= FROM_SCRATCH_WARMUP_STEPS and v < MIN_BASE_LOSS), None
    )
    return f"training loss {low[1]:.4g} at step {int(low[0])}, below {MIN_BASE_LOSS} nats a token" if low else None


@check("LOG016", "loss-impossibly-low", stage="post", severity="error")
def loss_impossibly_low(series) -> Iterator[Finding]:
    """
    What it checks: base training's validation bits per byte below 0.3 (or, with no validation
    lines, its training loss below 0.5 after its first 100 steps). Pretraining on web text does
    not get there: nanochat's largest models end near 0.7 bpb.

    Why it matters: a loss that low means the model sees the tokens it is asked to predict
    (attention that is not causal, a custom attention kernel with a wrong mask, targets leaked
    into the inputs, a validation split that is the training data). The curve looks like great
    training and the job may finish, but the model is worthless, and every later phase (and a
    resume or rerun of the same configuration) builds on it.

    Example:
        Step 00250 | Validation bpb: 0.004812
        step 00998/35280 (2.83%) | loss: 0.007095 | ...

    How to fix: do not use or resume this run; check the attention's causal mask (a fork's or
    a device's own attention path against PyTorch SDPA with is_causal=True on a small batch),
    the inputs/targets shift of the data loader and that validation reads its own shard; then
    rerun from scratch.
    """
    what = impossibly_low(series)
    if what is None:
        return
    attempt = series.get("base").attempts[0]
    yield Finding(
        f"base: {what}: no language model trained on web text gets there (nanochat's largest end near 0.7 bpb); "
        "the model sees the tokens it predicts (non-causal attention, targets in the inputs, validation on the "
        "training data), so what it saved is worthless",
        path=attempt.log,
        line=attempt.start_line,
        fix="do not use, resume or rerun this configuration as it is: check the attention's causal mask (a fork's "
        "or a device's own attention path against SDPA with is_causal=True), the loader's input/target shift and "
        "that validation reads its own shard; then rerun base training from scratch",
    )


@check("LOG017", "lr-schedule-overrun", stage="post", severity="warning")
def lr_schedule_overrun(logs) -> Iterator[Finding]:
    """
    What it checks: a training phase whose last step line shows its learning-rate schedule run
    past its end: a negative multiplier (``lrm: -0.05``) or progress above 100%.

    Why it matters: the steps past the end train with a negative learning rate, against the
    gradient. chat_sft from 2026-01-31 on counts ``--num-iterations`` in micro-batches, not in
    the optimizer steps its help names: with G gradient-accumulation steps, N iterations are
    about N/G optimizer steps, and the last one overshoots the schedule. A run asked for 500
    steps stops after 32 with 16 accumulation steps.

    Example:
        Total batch size 262,144 => gradient accumulation steps: 16
        step 00032 (102.60%) | loss: 2.116690 | lrm: -0.05 | ...

    How to fix: for N optimizer steps pass ``--num-iterations`` N x G (or -1: one epoch), and
    do not build on the last step's update if its multiplier was far below zero.
    """
    for ix in logs.logs:
        for seg in ix.segments:
            last = seg.last_step
            if seg.phase not in TRAIN_PHASES or last is None:
                continue
            # (an epoch's last batch may end a hair past 100%: -0.01 and 100.5% are rounding, not an overrun)
            over = (last.lrm is not None and last.lrm < -0.015) or (last.pct is not None and last.pct > 101)
            if not over:
                continue
            shown = ", ".join(
                x
                for x in (
                    f"progress {last.pct:.2f}%" if last.pct is not None else "",
                    f"learning-rate multiplier {last.lrm:g}" if last.lrm is not None else "",
                )
                if x
            )
            accum = seg.grad_accum or 0
            why = (
                f"; chat_sft (from 2026-01-31) counts --num-iterations in micro-batches, not optimizer steps: with "
                f"{accum} gradient accumulation steps, a run given --num-iterations=N stops after about N/{accum} "
                f"optimizer steps (this one after {last.step})"
                if seg.phase == "sft" and accum > 1
                else ""
            )
            yield Finding(
                f"{seg.phase}: step {last.step} ran past the end of its learning-rate schedule ({shown}){why}",
                path=ix.path,
                line=last.line,
                fix=f"for N optimizer steps pass --num-iterations={'N x ' + str(accum) if accum > 1 else 'N'} (or "
                "-1: one epoch)"
                if seg.phase == "sft"
                else "check the phase's horizon (--num-iterations) against its schedule's warmdown",
            )


# a fine-tuning run whose validation loss ends this far above its best (2%) and never came back down to it
VAL_ROSE_FRACTION = 0.02
MIN_VAL_POINTS = 4


@check("LOG018", "validation-got-worse", stage="post", severity="warning")
def validation_got_worse(series) -> Iterator[Finding]:
    """
    What it checks: midtraining or SFT whose validation loss (or bpb) ends more than 2% above
    its best value of the run, with at least four evaluations: the phase made the model worse
    on held-out data while its training loss went on falling.

    Why it matters: the checkpoint a fine-tuning phase saves is its last, so the model every
    later phase and chat use is the worst of the run: overfitting (too many epochs on a small
    set), a learning rate too high for a trained model, or training data unlike what it is
    measured on. The job still ends COMPLETED.

    Example:
        Step 00000 | Validation loss: 1.141274
        Step 03095 | Validation loss: 1.173947

    How to fix: train fewer steps or epochs (or at a lower learning rate) and compare the
    validation loss after each change; keep periodic saves to pick the best step.
    """
    for phase in ("mid", "sft"):
        ps = series.get(phase) if series is not None else None
        if ps is None:
            continue
        kind, steps, values = ps.val()
        if len(values) < MIN_VAL_POINTS:
            continue
        best = min(range(len(values)), key=values.__getitem__)
        first, last = values[0], values[-1]
        if best == len(values) - 1 or last <= values[best] * (1 + VAL_ROSE_FRACTION):
            continue
        attempt = ps.attempts[-1]
        trend = (
            f"rose at every evaluation from step {int(steps[0])} ({first:.4g})"
            if all(b >= a for a, b in zip(values, values[1:], strict=False))
            else f"was best at step {int(steps[best])} ({values[best]:.4g})"
        )
        yield Finding(
            f"{phase}: its validation {kind} {trend} to {last:.4g} at step {int(steps[-1])} "
            f"(+{100 * (last / values[best] - 1):.1f}%): the checkpoint it saved, its last, is the worst of the run",
            path=attempt.log,
            line=attempt.start_line,
            fix=f"train {phase} fewer steps or epochs, or at a lower learning rate, and compare its validation "
            f"{kind}; save periodically to keep the best step",
        )


# reward lines enough to call a run's zero reward its whole run, not its first minutes
MIN_REWARDED_STEPS = 10


@check("LOG019", "rl-reward-zero", stage="post", severity="warning")
def rl_reward_zero(logs) -> Iterator[Finding]:
    """
    What it checks: a chat_rl run whose average reward is 0.0 on every one of its logged steps
    (at least 10 of them).

    Why it matters: RL reinforces the answers that earned a reward; with none, every gradient
    is zero-advantage noise and the checkpoint it saves is no better than the SFT model it
    started from, while the job ends COMPLETED and chat_eval -i rl runs as if it had learned.
    The usual causes: a model too small or too briefly fine-tuned to solve any problem of the
    task, or a fork's reward function that never matches its answers.

    Example:
        Step 00059/00060 | Average reward: 0.0 | Average sequence length: 255.00

    How to fix: check the SFT model's score on the task first (``chat_eval -i sft -a GSM8K``):
    near 0% RL has nothing to reinforce (train a larger model, or SFT longer); for a fork's own
    task, test its reward on a known good answer.
    """
    for seg in logs.segments if logs is not None else []:
        if seg.phase != "rl" or seg.rewarded_steps < MIN_REWARDED_STEPS or seg.reward_max != 0.0:
            continue
        last = seg.last_step
        yield Finding(
            f"chat_rl: its average reward was 0.0 at every one of its {seg.rewarded_steps} logged steps"
            + (f" (to step {last.step})" if last is not None else "")
            + ": the policy never earned a reward, so the RL checkpoint is no better than the SFT model it started from",
            path=seg.path,
            line=seg.start_line,
            fix="score the SFT model on the task first (python -m scripts.chat_eval -i sft -a GSM8K): near 0% RL has "
            "nothing to reinforce; train a larger model or SFT longer (a fork's own task: test its reward on a known "
            "good answer)",
        )
