#!/bin/bash
# GPU throughput benchmark of the bundled trainer (nanochat/base_train.py), classic settings:
# batch 524,288 tokens = 32 x 2048 x 8 accumulation steps on 1 GPU, vocab 65,536 (synthetic), bf16 autocast, torch.compile.
#
#   bash bench/gpu_train.sh single   # depth 12 and 20 on GPU 0
#   bash bench/gpu_train.sh ddp2     # depth 12 on 2 GPUs with torchrun (end to end, a few steps)
#   bash bench/gpu_train.sh pipeline # depth 4 base -> mid -> eval -> SFT -> eval -> chat on NPROC (default 2) GPUs, plus SIGUSR1 + resume
#   bash bench/gpu_train.sh vs-classic "c20 b20"   # classic nanochat and the bundled trainer, one after the other on GPU 0
#
# vs-classic: same flags, data, tokenizer and seed for both, in one call; cD = classic at depth D (a checkout of
# karpathy/nanochat 507d542 in .bench-classic/classic, wandb stub in .bench-classic/stubs, its rustbpe wheel in
# .bench-classic/whl), bD = bundled, bD-key=value = bundled with --key=value (e.g. b20-grad_clip=0.0).
# BUNDLED_ENV="NAME=value ..." sets environment variables for the bundled runs only (an inductor setting as an A/B);
# bD+NAME=value(+NAME2=value) sets them for that one run, so a baseline and its variants share a call.
# BENCH_CLASSIC=.bench-slim: another folder of the same layout (a smaller one where a call must carry more).
# Data: .bench-classic/base (parquet shards + tokenizer.pkl + token_bytes.pt), copied per trainer. Every run compiles
# cold (own inductor cache). Logs, a JSON summary and the ratios land in $OUT (python bench/gpu_compare.py summary).
#
# Report: median tok/sec and MFU over steps >= 11 (python scripts/bench_summarize.py LOG), peak memory from the end lines.
set -euo pipefail
MODE=${1:-single}
OUTDIR=${OUT:-/tmp/bench_out}
mkdir -p "$OUTDIR"
export NANOCHAT_BASE_DIR=${NANOCHAT_BASE_DIR:-/tmp/nanochat_bench}
export OMP_NUM_THREADS=1 PYTHONUNBUFFERED=1
if [ "$MODE" != "vs-classic" ] && [ ! -f "$NANOCHAT_BASE_DIR/tokenizer/tokenizer.pkl" ]; then
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
elif [ "$MODE" = "vs-classic" ]; then
    G=$PWD/${BENCH_CLASSIC:-.bench-classic}
    [ -d "$G/classic/nanochat" ] && [ -f "$G/base/tokenizer/tokenizer.pkl" ] || { echo "vs-classic needs .bench-classic/{classic,base,stubs,whl} (see the header)"; exit 2; }
    if ls "$G"/whl/*.whl > /dev/null 2>&1; then  # else a stand-in in stubs/ (classic imports rustbpe only to train)
        python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site "$G"/whl/*.whl
    fi
    nvidia-smi --query-gpu=name,driver_version,clocks.sm,temperature.gpu,power.draw --format=csv || true
    python3 -c "import torch, sys; print('python', sys.version.split()[0], 'torch', torch.__version__, 'cuda', torch.version.cuda)"
    git log -1 --format="bundled at %h %s" 2>/dev/null || true
    FLAGS="--run=dummy --max_seq_len=2048 --device_batch_size=32 --total_batch_size=524288 --num_iterations=${STEPS:-30} --eval_every=100000 --eval_tokens=524288 --core_metric_every=-1 --sample_every=100000"
    for R in ${2:-c12 b12}; do
        WHO=${R:0:1}; SPEC=${R:1}; RUN_ENV=""
        [[ "$SPEC" == *+* ]] && RUN_ENV=$(echo "${SPEC#*+}" | tr '+' ' ') && SPEC=${SPEC%%+*}
        D=${SPEC%%-*}; EXTRA=""
        [ "$SPEC" != "$D" ] && for KV in $(echo "${SPEC#*-}" | tr '-' ' '); do EXTRA="$EXTRA --$KV"; done
        LOG="$OUTDIR/$(echo "$R" | tr '=+:' '___').log"  # plain names: the device returns only those
        # each run's exit (a timeout's 124/137 included) is logged, not fatal: under set -e the subshell ended at a
        # killed run, and the comparison with it (2026-12-06)
        BASE=/tmp/vs_classic/$R; rm -rf "$BASE"; mkdir -p "$BASE" && cp -r "$G/base/base_data" "$G/base/tokenizer" "$BASE/"
        export TORCHINDUCTOR_CACHE_DIR=/tmp/vs_classic/inductor_$R TRITON_CACHE_DIR=/tmp/vs_classic/triton_$R
        echo "=== $(date +%T) $R: depth $D$EXTRA ${RUN_ENV}"
        if [ "$WHO" = c ]; then
            (cd "$G/classic" && NANOCHAT_BASE_DIR=$BASE PYTHONPATH=/tmp/site:$G/stubs CUDA_VISIBLE_DEVICES=0 timeout -k 10 ${RUN_LIMIT:-290} python3 -m scripts.base_train --depth=$D $FLAGS 2>&1 && RC=0 || RC=$?; echo "EXIT $RC") | python3 bench/gpu_compare.py stamp > "$LOG"
        else
            (env ${BUNDLED_ENV:-} $RUN_ENV NANOCHAT_BASE_DIR=$BASE CUDA_VISIBLE_DEVICES=0 timeout -k 10 ${RUN_LIMIT:-290} python3 -m nanochat.base_train --depth=$D $FLAGS $EXTRA 2>&1 && RC=0 || RC=$?; echo "EXIT $RC") | python3 bench/gpu_compare.py stamp > "$LOG"
        fi
        rm -rf "$BASE"
        grep -E "step 000(00|10|29)/|Peak memory|EXIT|Error" "$LOG" | grep -v "<|bos|>" | tail -6 || true
    done
    python3 bench/gpu_compare.py summary "$OUTDIR"/*.log --json "$OUTDIR/compare.json"
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
