#!/bin/bash
# GPU throughput benchmark of the bundled trainer (nanochat/base_train.py), classic settings:
# batch 524,288 tokens = 32 x 2048 x 8 accumulation steps on 1 GPU, vocab 65,536 (synthetic), bf16 autocast, torch.compile.
#
#   bash bench/gpu_train.sh single   # depth 12 and 20 on GPU 0
#   bash bench/gpu_train.sh ddp2     # depth 12 on 2 GPUs with torchrun (end to end, a few steps)
#   bash bench/gpu_train.sh pipeline # depth 4 base -> mid -> eval -> SFT -> eval -> chat on NPROC (default 2) GPUs, plus SIGUSR1 + resume
#
# Report: median tok/sec and MFU over steps >= 11 (python scripts/bench_summarize.py LOG), peak memory from the end lines.
set -euo pipefail
MODE=${1:-single}
OUTDIR=${OUT:-/tmp/bench_out}
mkdir -p "$OUTDIR"
export NANOCHAT_BASE_DIR=${NANOCHAT_BASE_DIR:-/tmp/nanochat_bench}
export OMP_NUM_THREADS=1 PYTHONUNBUFFERED=1
if [ ! -f "$NANOCHAT_BASE_DIR/tokenizer/tokenizer.pkl" ]; then
    python3 -m nanochat.dataset build --num-shards 3 --chars-per-shard 4000000 > "$OUTDIR/setup.log" 2>&1
    python3 -m nanochat.tok_train --vocab_size=65536 --synthetic=1 >> "$OUTDIR/setup.log" 2>&1
fi
COMMON="--run=dummy --max_seq_len=2048 --device_batch_size=32 --total_batch_size=524288 --eval_every=-1 --eval_tokens=524288 --sample_every=-1"
if [ "$MODE" = "single" ]; then
    for D in ${DEPTHS:-12 20}; do
        STEPS=${STEPS:-30}
        CUDA_VISIBLE_DEVICES=0 python3 -m nanochat.base_train --depth=$D --num_iterations=$STEPS $COMMON 2>&1 | grep -v "^<|bos|>" > "$OUTDIR/d${D}_1gpu.log" || { tail -30 "$OUTDIR/d${D}_1gpu.log"; exit 1; }
        python3 scripts/bench_summarize.py "$OUTDIR/d${D}_1gpu.log"
    done
elif [ "$MODE" = "pipeline" ]; then
    export NANOCHAT_BASE_DIR=/tmp/nanochat_pipeline
    mkdir -p $NANOCHAT_BASE_DIR && cp -r /tmp/nanochat_bench/base_data /tmp/nanochat_bench/tokenizer $NANOCHAT_BASE_DIR/
    T="torchrun --standalone --nproc_per_node=${NPROC:-2} -m"
    SMALL="--max_seq_len=512 --device_batch_size=16 --total_batch_size=16384"
    {
    python3 -m nanochat.report reset
    $T nanochat.base_train -- --depth=4 $SMALL --num_iterations=30 --eval_every=15 --eval_tokens=65536 --save_every=10
    $T nanochat.mid_train -- $SMALL --task_size=1000 --eval_tokens=65536
    $T nanochat.chat_eval -- -i mid -x 16
    $T nanochat.chat_sft -- --task_size=200 --target_examples_per_step=8 --device_batch_size=4
    $T nanochat.chat_eval -- -i sft -x 16
    python3 -m nanochat.chat_cli -p hi
    python3 -m nanochat.report generate
    # SIGTERM to torchrun (what speedrun.slurm forwards), which passes it to the workers; then resume from the saved step
    $T nanochat.base_train -- --depth=4 $SMALL --num_iterations=100000 --eval_every=-1 --model_tag=sig &
    TR=$!
    sleep 75
    kill -TERM $TR
    wait $TR || true
    S=$(python3 -c "from nanochat.checkpoint import find_last_step; print(find_last_step('$NANOCHAT_BASE_DIR/base_checkpoints/sig'))")
    $T nanochat.base_train -- --depth=4 $SMALL --num_iterations=$((S + 3)) --eval_every=-1 --model_tag=sig --resume_from_step=$S
    } > "$OUTDIR/pipeline.log" 2>&1 || { tail -40 "$OUTDIR/pipeline.log"; exit 1; }
    grep -E "Received|Resuming|exit code 0|accuracy|Assistant|Saved model checkpoint|Validation" "$OUTDIR/pipeline.log" | head -40
    tail -12 "$NANOCHAT_BASE_DIR/report/report.md"
else
    torchrun --standalone --nproc_per_node=2 -m nanochat.base_train -- --depth=12 --num_iterations=${STEPS:-20} $COMMON 2>&1 | grep -v "^<|bos|>" > "$OUTDIR/d12_2gpu.log" || { tail -30 "$OUTDIR/d12_2gpu.log"; exit 1; }
    python3 scripts/bench_summarize.py "$OUTDIR/d12_2gpu.log"
fi
