#!/bin/bash
# The whole nanochat pipeline: tokenizer -> base -> mid -> SFT -> chat eval -> report, in the classic order.
#
#   bash scripts/speedrun.sh            # GPUs: depth 20 on every visible GPU (torchrun)
#   bash scripts/speedrun.sh --tiny     # CPU: a tiny model end to end in a couple of minutes
#   WANDB_RUN=myrun bash scripts/speedrun.sh   # log to wandb (needs wandb installed and a key or WANDB_MODE=offline)
#
# Environment:
#   NANOCHAT_BASE_DIR  where data, tokenizer, checkpoints and report go (kept if set; default ~/.cache/nanochat)
#   WANDB_RUN          wandb run name; "dummy" (default) disables wandb logging and nothing else
#   NPROC_PER_NODE     GPUs to use (default: all visible)
#   NANOCHAT_DATA      local (default: build the demo corpus from Python's own docs, no network) | fineweb (download 240 shards)
# Runs from any directory (the repo is put on PYTHONPATH); report.md is copied to the current directory at the end.
set -euo pipefail

TINY=0
for arg in "$@"; do
    case "$arg" in
        --tiny) TINY=1 ;;
        *) echo "usage: bash scripts/speedrun.sh [--tiny]" >&2; exit 2 ;;
    esac
done

export OMP_NUM_THREADS=1  # classic; on small CPU boxes torch's spinning threads also fight each other
REPO_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export PYTHONPATH="$REPO_DIR${PYTHONPATH:+:$PYTHONPATH}"
export NANOCHAT_BASE_DIR="${NANOCHAT_BASE_DIR:-$HOME/.cache/nanochat}"  # respect an existing value
mkdir -p "$NANOCHAT_BASE_DIR"
WANDB_RUN="${WANDB_RUN:-dummy}"
NANOCHAT_DATA="${NANOCHAT_DATA:-local}"
PYTHON="${PYTHON:-python3}"

# launcher: torchrun on GPUs, plain python on CPU (and always in tiny mode)
HAS_CUDA=$($PYTHON -c "import torch; print(int(torch.cuda.is_available()))")
if [ "$TINY" = "0" ] && [ "$HAS_CUDA" = "1" ]; then
    NPROC_PER_NODE="${NPROC_PER_NODE:-$($PYTHON -c "import torch; print(torch.cuda.device_count())")}"
    launch() { local mod=$1; shift; torchrun --standalone --nproc_per_node="$NPROC_PER_NODE" -m "$mod" -- "$@"; }
else
    launch() { local mod=$1; shift; $PYTHON -m "$mod" "$@"; }
fi
echo "NANOCHAT_BASE_DIR=$NANOCHAT_BASE_DIR WANDB_RUN=$WANDB_RUN TINY=$TINY"

if [ "$TINY" = "1" ]; then
    SHARDS="--num-shards 3 --chars-per-shard 600000"
    TOK="--max_chars=2000000 --vocab_size=1024"
    BASE="--depth=2 --max_seq_len=256 --device_batch_size=4 --total_batch_size=2048 --num_iterations=40 --eval_every=20 --eval_tokens=8192 --sample_every=-1"
    MID="--max_seq_len=256 --device_batch_size=4 --total_batch_size=2048 --task_size=200 --eval_every=20 --eval_tokens=4096"
    SFT="--device_batch_size=4 --target_examples_per_step=8 --task_size=100 --eval_every=25 --eval_steps=4 --eval_metrics_max_problems=4"
    EVAL="-x 8 -m 48"
else
    SHARDS="--num-shards 8 --chars-per-shard 4000000"  # >= 8 row groups per shard: every rank of 8 gets data
    TOK="--max_chars=2000000000 --vocab_size=65536"
    BASE="--depth=20"
    MID=""
    SFT=""
    EVAL=""
fi

# -----------------------------------------------------------------------------
# report header (once per pipeline: it holds the start time of the wall clock)
$PYTHON -m nanochat.report reset

# data
if [ "$NANOCHAT_DATA" = "fineweb" ]; then
    $PYTHON -m nanochat.dataset -n 240   # network needed
else
    $PYTHON -m nanochat.dataset build $SHARDS
    if [ "$TINY" = "0" ]; then TOK="--max_chars=2000000000 --vocab_size=8192"; fi  # the demo corpus is small: small vocab
fi

# tokenizer
$PYTHON -m nanochat.tok_train $TOK

# base model
launch nanochat.base_train --run="$WANDB_RUN" $BASE

# midtraining, then its chat eval
launch nanochat.mid_train --run="$WANDB_RUN" $MID
launch nanochat.chat_eval -i mid $EVAL

# supervised finetuning, then its chat eval
launch nanochat.chat_sft --run="$WANDB_RUN" $SFT
launch nanochat.chat_eval -i sft $EVAL

# the report: BASE/report/report.md, copied to the current directory
$PYTHON -m nanochat.report generate
echo "Done. Talk to the model: python -m nanochat.chat_cli -p \"hi\""
