"""Where one training step's GPU time goes: the bundled trainer's model and optimizers, or classic nanochat's, in
the same harness (random tokens, bf16 autocast, torch.compile, B x T x grad-accum micro-batches, then grad clip,
AdamW + Muon, zero_grad), profiled with torch.profiler after warm-up.

    python bench/gpu_profile.py --impl bundled --depth 20 --out $OUT/prof_b20.json
    python bench/gpu_profile.py --impl classic --classic .bench-classic/classic --depth 20 --out $OUT/prof_c20.json
    python bench/gpu_profile.py --impl bundled --depth 20 --compile-mode max-autotune-no-cudagraphs --out $OUT/m.json
    python bench/gpu_profile.py --impl bundled --depth 20 --head plain --fp8    # A/B the bundled options
    python bench/gpu_profile.py --impl bundled --depth 20 --rope fused         # rotary + QK norm as Triton kernels

Prints the step's wall time (CUDA events), the GPU busy time, and the kernel time by category (matmul, attention,
fused elementwise, optimizer, ...) with the top kernels; the JSON holds every kernel's total, the peak memory, the
compile mode and the first warm-up step's wall time (compilation included). Only one impl per
process: both packages are named `nanochat`.
"""

import argparse
import ast
import json
import os
import re
import statistics
import sys
import time
from collections import defaultdict

CATEGORIES = [  # first match wins; kernel names of cuBLAS/cuDNN/inductor/aten on Hopper
    ("attention", r"sdpa|fmha|flash|attention|cudnn"),
    ("matmul", r"gemm|nvjet|cutlass|xmma|sm90_|wgmma|matmul|splitk|^triton_tem_"),  # tem: inductor GEMM templates
    ("optimizer", r"multi_tensor|foreach|adam|lerp"),
    # inductor's generated kernels, and the Triton kernels that replace some of them (rope_norm_kernel, softcap_ce_kernel)
    ("fused elementwise (inductor)", r"^triton_|^_rope_norm|^_softcap_ce"),
    ("memory (copy/set)", r"memcpy|memset|copy_|cat"),
    ("aten elementwise/reduce", r"elementwise|vectorized|reduce|softmax|norm|index|embedding|scatter|gather"),
]


def category(name):
    for label, pattern in CATEGORIES:
        if re.search(pattern, name, re.IGNORECASE):
            return label
    return "other"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--impl", choices=["bundled", "classic"], required=True)
    ap.add_argument("--classic", default=".bench-classic/classic")
    ap.add_argument("--depth", type=int, default=20)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--seq", type=int, default=2048)
    ap.add_argument("--accum", type=int, default=8)
    ap.add_argument("--vocab", type=int, default=65536)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--timed", type=int, default=4)
    ap.add_argument("--chunk-elements", type=int, default=0, help="bundled: logits per loss chunk (0: its default)")
    ap.add_argument(
        "--compile-mode",
        default=None,
        help="torch.compile mode for the model (e.g. max-autotune-no-cudagraphs); default: none, torch's default",
    )
    ap.add_argument("--head", choices=["default", "chunked", "plain"], default="default", help="bundled: loss head")
    ap.add_argument("--fp8", action="store_true", help="bundled: block matmuls in float8 (nanochat/fp8.py)")
    ap.add_argument(
        "--rope",
        choices=["compiled", "fused"],  # gpt.ROPE_KERNEL: the kernels, or the torch code
        default=None,
        help="bundled: q/k/v, rotary and QK norm as torch code or Triton kernels (gpt.ROPE_KERNEL; default: its own)",
    )
    ap.add_argument(
        "--inductor",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="set torch._inductor.config.KEY (a Python literal), e.g. coordinate_descent_tuning=True; repeatable",
    )
    ap.add_argument(
        "--shapes", action="store_true", help="also record the GPU time of each aten op by input shapes (GEMMs, SDPA)"
    )
    ap.add_argument("--device", default="cuda", help="cpu: a smoke test of the harness (no compile, no timing)")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    root = os.path.abspath(args.classic) if args.impl == "classic" else os.path.dirname(os.path.dirname(__file__))
    sys.path.insert(0, os.path.abspath(root))
    stubs = os.path.join(os.path.dirname(os.path.abspath(args.classic)), "stubs")
    if args.impl == "classic" and os.path.isdir(stubs):
        sys.path.insert(1, stubs)  # classic imports wandb at the top of some modules
    import torch
    import torch._inductor.config as inductor_config
    from torch.profiler import ProfilerActivity, profile

    for setting in args.inductor:
        key, _, value = setting.partition("=")
        inductor_config.__setattr__(key, ast.literal_eval(value))  # an unknown key fails here, before any work
    import nanochat.gpt as model_module
    from nanochat.gpt import GPT, GPTConfig

    if args.impl == "bundled" and args.rope:
        model_module.ROPE_KERNEL = args.rope
    if args.chunk_elements and args.impl == "bundled":
        import nanochat.fused_loss

        nanochat.fused_loss.CHUNK_ELEMENTS = args.chunk_elements

    torch.manual_seed(42)
    dim = args.depth * 64
    heads = max(1, (dim + 127) // 128)
    cfg = GPTConfig(
        sequence_len=args.seq, vocab_size=args.vocab, n_layer=args.depth, n_head=heads, n_kv_head=heads, n_embd=dim
    )
    with torch.device("meta"):
        model = GPT(cfg)
    dev = args.device
    model.to_empty(device=dev)
    model.init_weights()
    if args.impl == "bundled" and args.head != "default":
        model.chunked_loss = args.head == "chunked"
    if args.impl == "bundled" and args.fp8:
        from nanochat.fp8 import convert_to_fp8

        convert_to_fp8(model)
    optimizers = model.setup_optimizers()
    compile_kwargs = dict(dynamic=False) if args.compile_mode is None else dict(dynamic=False, mode=args.compile_mode)
    cmodel = torch.compile(model, **compile_kwargs) if dev == "cuda" else model
    gen = torch.Generator(device=dev).manual_seed(0)
    rows = [torch.randint(0, args.vocab, (args.batch, args.seq + 1), device=dev, generator=gen) for _ in range(4)]
    batches = [(r[:, :-1].contiguous(), r[:, 1:].contiguous()) for r in rows]  # as the data loaders give them
    autocast = torch.amp.autocast(device_type=dev, dtype=torch.bfloat16, enabled=dev == "cuda")

    def step():
        for i in range(args.accum):
            x, y = batches[i % len(batches)]
            with autocast:
                loss = cmodel(x, y)
            (loss / args.accum).backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        for opt in optimizers:
            opt.step()
        model.zero_grad(set_to_none=True)
        return loss

    warmup_s = []
    for i in range(args.warmup):
        t0 = time.perf_counter()
        loss = step()
        if dev == "cuda":
            torch.cuda.synchronize()
        warmup_s.append(time.perf_counter() - t0)
        print(f"  warm-up step {i}: {warmup_s[-1]:.1f} s", flush=True)
    if dev != "cuda":
        print(f"{args.impl} d{args.depth} on {dev}: {args.warmup} steps ran, last loss {loss.item():.4f}")
        return
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    wall = []
    for _ in range(args.timed):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        step()
        b.record()
        torch.cuda.synchronize()
        wall.append(a.elapsed_time(b))
    activities = [ProfilerActivity.CUDA] + ([ProfilerActivity.CPU] if args.shapes else [])
    with profile(activities=activities, record_shapes=args.shapes) as prof:
        step()
        torch.cuda.synchronize()
    ops = {}
    if args.shapes:  # the device time under each aten op, by its input shapes: which product is slow
        for evt in prof.key_averages(group_by_input_shape=True):
            # self time: the kernels the op itself launched (a total would add its children's, and count the
            # cuDNN attention's wrapper and inner op twice)
            t = getattr(evt, "self_device_time_total", None) or getattr(evt, "self_cuda_time_total", 0)
            if t and re.match(r"aten::(mm|addmm|bmm|baddbmm|_scaled_mm|_scaled_dot|_efficient|_flash|_cudnn)", evt.key):
                ops[f"{evt.key} {evt.input_shapes}"] = dict(ms=t / 1000.0, calls=evt.count)
    kernels = defaultdict(float)
    for evt in prof.key_averages():
        t = getattr(evt, "device_time_total", None) or getattr(evt, "cuda_time_total", 0)
        # with CPU activity on (--shapes), each compiled graph's call is also a GPU range ("## Call CompiledFxGraph
        # ..."): a span over its kernels, not a kernel, so it is left out of the busy time
        if t and evt.device_type == torch.autograd.DeviceType.CUDA and not evt.key.startswith("## "):
            kernels[evt.key] += t / 1000.0  # us -> ms
    busy = sum(kernels.values())
    by_cat = defaultdict(float)
    for name, ms in kernels.items():
        by_cat[category(name)] += ms
    step_ms = statistics.median(wall)
    peak_mib = torch.cuda.max_memory_allocated() / 2**20
    rope = getattr(model_module, "ROPE_KERNEL", None)  # classic has no such switch
    print(
        f"{args.impl} d{args.depth} compile mode {args.compile_mode or 'default'}, rope {rope}, inductor {args.inductor}: "
        f"first step {warmup_s[0]:.1f} s"
    )
    print(f"{args.impl} d{args.depth}: step {step_ms:.1f} ms (median of {args.timed}: {[round(w) for w in wall]})")
    print(f"  GPU busy {busy:.1f} ms in the profiled step, peak memory {peak_mib:,.0f} MiB")
    for label, ms in sorted(by_cat.items(), key=lambda kv: -kv[1]):
        print(f"  {label:32s} {ms:8.1f} ms  {100 * ms / busy:5.1f}%")
    print("  top kernels:")
    for name, ms in sorted(kernels.items(), key=lambda kv: -kv[1])[:25]:
        print(f"  {ms:8.1f} ms  [{category(name)[:10]}] {name[:110]}")
    if ops:
        print("  aten ops by input shapes (device ms per step, calls):")
        for key, v in sorted(ops.items(), key=lambda kv: -kv[1]["ms"])[:40]:
            print(f"  {v['ms']:8.1f} ms {v['calls']:5d}x  {key[:150]}")
    if args.out:
        with open(args.out, "w") as f:
            json.dump(
                dict(
                    impl=args.impl,
                    depth=args.depth,
                    compile_mode=args.compile_mode,
                    inductor=args.inductor,
                    head=args.head,
                    fp8=args.fp8,
                    rope=rope,
                    warmup_s=warmup_s,
                    step_ms=wall,
                    busy_ms=busy,
                    peak_mib=peak_mib,
                    by_category=by_cat,
                    kernels=kernels,
                    ops_by_shape=ops,
                ),
                f,
                indent=1,
            )


if __name__ == "__main__":
    main()
