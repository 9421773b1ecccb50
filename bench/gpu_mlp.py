"""The MLP of one block (c_fc -> ReLU^2 -> c_proj) for one micro-batch (32 x 2048 tokens), forward + backward, as
the trainer runs it (torch code under torch.compile and bf16 autocast: cuBLAS GEMMs, inductor's ReLU^2 kernels); as
`nanochat/relu_sq_mlp.py` (weight gradients split over the tokens); and with quack's Hopper GEMMs (CuTe-DSL), whose
epilogues fuse ReLU^2 into c_fc's output and its derivative into c_proj's input gradient, both as quack's whole MLP
(`quack.mlp.mlp_func`, activation "relu_sq") and for those two products only (the trainer's quack-epilogue), where
quack is installed. Each variant: time (CUDA-event median), time per d20 optimizer step (depth x 8 micro-batches),
peak memory of what it keeps for the backward, and the relative difference of its output and gradients to an fp32
reference.

    python bench/gpu_mlp.py [DEPTH ...]        # default: 20 12
    python bench/gpu_mlp.py --sft [DEPTH ...]  # SFT's shapes: eager, a new row length every micro-batch

--sft: chat_sft runs the model uncompiled on rows padded to each micro-batch's longest conversation (4 rows by
default), so every micro-batch may bring a new token count. Each variant runs eagerly over a sequence of such counts:
the first call of each new count (a quack kernel compiled for it, if it compiles per shape) and then the median.
"""

import os
import sys
import time
from functools import partial

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from bench.gpu_kernels import rel, timed  # noqa: E402
from nanochat.relu_sq_mlp import relu_sq_mlp  # noqa: E402


def torch_mlp(x, w1, w2):
    return F.linear(F.relu(F.linear(x, w1)).square(), w2)


def variants():
    """name -> MLP function of (x, w1, w2); the quack ones only where it imports."""
    found = {"torch, compiled": torch.compile(torch_mlp)}
    for split in (2, 4):
        found[f"torch, wgrad split {split}, compiled"] = torch.compile(partial(relu_sq_mlp, split=split))
    try:
        from quack.mlp import mlp_func
    except ImportError as e:
        print(f"quack: not available ({e})")
        return found

    def quack(tuned):
        return lambda x, w1, w2: mlp_func(x, w1, w2, activation="relu_sq", tuned=tuned)

    found["quack, heuristic config"] = quack(False)
    found["quack heuristic, inside torch.compile"] = torch.compile(quack(False))
    for split in (1, 2, 4):  # quack's two fused products, cuBLAS for the rest (the trainer's quack-epilogue)
        found[f"quack epilogues + cuBLAS split {split}, compiled"] = torch.compile(
            partial(relu_sq_mlp, split=split, kernel="quack")
        )
    if os.environ.get("MLP_AUTOTUNE"):  # autotuning hung a training run on the device (2026-12-06): opt-in
        found["quack, autotuned"] = quack(True)
    return found


def measure(depth, B=32, T=2048, accum=8):
    C, N = depth * 64, B * T
    torch.manual_seed(0)
    x = torch.randn(N, C, device="cuda", dtype=torch.bfloat16, requires_grad=True)
    w1 = (torch.randn(4 * C, C, device="cuda") * C**-0.5).requires_grad_()
    w2 = (torch.randn(C, 4 * C, device="cuda") * (4 * C) ** -0.5).requires_grad_()
    dy = torch.randn(N, C, device="cuda", dtype=torch.bfloat16)
    y = torch_mlp(x.float(), w1, w2)
    ref = [y.float()] + [t.float() for t in torch.autograd.grad(y, (x, w1, w2), dy.float())]
    del y
    acc1, acc2 = torch.zeros_like(w1), torch.zeros_like(w2)
    flop = 3 * 2 * (2 * N * C * 4 * C)  # two products, forward + two backward each
    for name, fn in variants().items():

        def step(fn=fn):
            with torch.autocast("cuda", dtype=torch.bfloat16):
                y = fn(x, w1, w2)
            gx, g1, g2 = torch.autograd.grad(y, (x, w1, w2), dy)
            acc1.add_(g1)  # as AccumulateGrad does into .grad
            acc2.add_(g2)
            return y, gx, g1, g2

        try:
            out = step()
            torch.cuda.synchronize()
        except Exception as e:  # noqa: BLE001 - a bench reports what failed and goes on
            print(f"mlp d{depth} {name}: failed ({type(e).__name__}: {str(e).splitlines()[0][:160]})")
            continue
        errors = " ".join(f"{k} {rel(a, b):.1e}" for k, a, b in zip(("y", "dx", "dw1", "dw2"), out, ref, strict=True))
        del out
        ms = timed(step, reps=10)
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        with torch.autocast("cuda", dtype=torch.bfloat16):
            y = fn(x, w1, w2)
        kept = (torch.cuda.max_memory_allocated() - base) / 2**20
        del y
        print(
            f"mlp d{depth} {name:40s} {ms:7.3f} ms {flop / ms / 1e9:5.0f} TFLOP/s, {ms * depth * accum:7.1f} ms per step,"
            f" forward peak {kept:6.0f} MiB; rel. diff to fp32: {errors}"
        )


SFT_ROW_LENGTHS = (301, 777, 1024, 1536, 2048, 913)  # padded lengths of consecutive micro-batches


def measure_sft(depth, rows=4):
    C = depth * 64
    torch.manual_seed(0)
    w1 = (torch.randn(4 * C, C, device="cuda") * C**-0.5).requires_grad_()
    w2 = (torch.randn(C, 4 * C, device="cuda") * (4 * C) ** -0.5).requires_grad_()
    eager = {"torch, eager": torch_mlp, "torch, wgrad split 4, eager": partial(relu_sq_mlp, split=4)}
    try:
        import quack.gemm_interface  # noqa: F401

        eager["quack epilogues + cuBLAS split 2, eager"] = partial(relu_sq_mlp, split=2, kernel="quack")
    except ImportError as e:
        print(f"quack: not available ({e})")
    for name, fn in eager.items():
        firsts, medians = [], []
        for T in SFT_ROW_LENGTHS:
            x = torch.randn(rows, T, C, device="cuda", dtype=torch.bfloat16, requires_grad=True)
            dy = torch.randn(rows, T, C, device="cuda", dtype=torch.bfloat16)

            def step(fn=fn, x=x, dy=dy):
                with torch.autocast("cuda", dtype=torch.bfloat16):
                    y = fn(x, w1, w2)
                return torch.autograd.grad(y, (x, w1, w2), dy)

            torch.cuda.synchronize()
            t0 = time.perf_counter()
            try:
                step()
                torch.cuda.synchronize()
            except Exception as e:  # noqa: BLE001 - a bench reports what failed and goes on
                print(f"mlp sft d{depth} {name}: failed at {rows}x{T} ({type(e).__name__}: {str(e)[:160]})")
                break
            firsts.append((time.perf_counter() - t0) * 1000)
            medians.append(timed(step, reps=10))
        else:
            print(
                f"mlp sft d{depth} {name:42s} first call per new shape (ms): {' '.join(f'{t:.0f}' for t in firsts)};"
                f" median (ms): {' '.join(f'{t:.3f}' for t in medians)}; total median {sum(medians):.3f} ms"
            )


if __name__ == "__main__":
    print(torch.cuda.get_device_name(), "torch", torch.__version__)
    args = sys.argv[1:]
    sft = "--sft" in args
    for d in [int(a) for a in args if a != "--sft"] or [20, 12]:
        measure_sft(d) if sft else measure(d)
