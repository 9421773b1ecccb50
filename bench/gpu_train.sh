#!/bin/bash
# GPU throughput benchmark of the bundled trainer (nanochat/base_train.py), classic settings:
# batch 524,288 tokens = 32 x 2048 x 8 accumulation steps on 1 GPU, vocab 65,536 (synthetic), bf16 autocast, torch.compile.
#
#   bash bench/gpu_train.sh single   # depth 12 and 20 on GPU 0
#   bash bench/gpu_train.sh ddp2     # depth 12 on 2 GPUs with torchrun (end to end, a few steps)
#
# Report: median tok/sec and MFU over steps >= 11 (python bench/summarize.py LOG), peak memory from the end lines.
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
        python3 bench/summarize.py "$OUTDIR/d${D}_1gpu.log"
    done
else
    torchrun --standalone --nproc_per_node=2 -m nanochat.base_train -- --depth=12 --num_iterations=${STEPS:-20} $COMMON 2>&1 | grep -v "^<|bos|>" > "$OUTDIR/d12_2gpu.log" || { tail -30 "$OUTDIR/d12_2gpu.log"; exit 1; }
    python3 bench/summarize.py "$OUTDIR/d12_2gpu.log"
fi
