"""The trainer's hot spots one by one on a GPU, at the d12 / d20 shapes of one micro-batch (32 x 2048 tokens):

- attention: SDPA forward + backward, causal, bf16, each backend alone (flash, cuDNN, memory-efficient, and
  FlashAttention-4 where flash_attn.cute is installed: directly and through SDPA's flash backend; `fa4` runs only these), and
  which kernel a compiled layer runs under each backend setting (SDPA default, cuDNN first by priority,
  cuDNN with only math as fallback);
- head: lm_head + soft-cap + cross-entropy, forward + backward, classic (full fp32 logits) vs chunked
  (nanochat/fused_loss.py), both under torch.compile, with their peak memory;
- Muon: one optimizer step over the d20 block matrices, one matrix at a time (classic) vs batched by shape;
- loss: one chunk of logits (8,192 x 65,536 bf16) to loss + gradient, the compiled kernel pair vs the Triton kernel
  (nanochat/softcap_ce_kernel.py) over its launch settings, with the differences to the compiled result;
- rope: rotary + QK norm of one layer's q and k (and v passed through), forward + backward: inductor's code from
  three GEMM outputs (the torch code) and from one q/k/v GEMM, vs the Triton kernels (nanochat/rope_norm_kernel.py)
  over their launch settings, with the differences to an fp32 reference;
- headchunks: the chunked head at 4,096 to 32,768 tokens per chunk (time and peak memory);
- gemm: every bf16 product of one d12 / d20 micro-batch (forward, input gradient, weight gradient of each Linear, the
  loss head's chunk products), as autograd calls cuBLAS and in other formulations of the same product (the transposed
  product, cuBLASLt, the weight gradient split over K, quack's GEMMs where installed), each with its TFLOP/s and its
  time per optimizer step; `gemm20` runs d20 only (no d12, no cuBLASLt pass).

    python bench/gpu_kernels.py [attention|fa4|head|headchunks|muon|loss|rope|gemm|gemm20 ...]   # one line a measurement
"""

import itertools
import os
import statistics
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from nanochat import fused_loss  # noqa: E402
from nanochat.fused_loss import softcap_cross_entropy  # noqa: E402
from nanochat.muon import Muon, zeropower_via_newtonschulz5  # noqa: E402


def timed(fn, reps=10, warmup=3):
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(reps):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        fn()
        b.record()
        torch.cuda.synchronize()
        times.append(a.elapsed_time(b))
    return statistics.median(times)


def rel(a, b):
    return ((a.float() - b.float()).norm() / b.float().norm()).item()


def attention(depth, B=32, T=2048, D=128):
    from torch.nn.attention import SDPBackend, sdpa_kernel

    H = depth * 64 // D
    q, k, v = (
        torch.randn(B, T, H, D, device="cuda", dtype=torch.bfloat16).transpose(1, 2).requires_grad_() for _ in range(3)
    )
    dy = torch.randn(B, H, T, D, device="cuda", dtype=torch.bfloat16)
    flops = 4 * B * H * T * T * D / 2 * 3.5  # causal: half the matrix; backward = 2.5x forward
    ref = None
    for backend in (SDPBackend.FLASH_ATTENTION, SDPBackend.CUDNN_ATTENTION, SDPBackend.EFFICIENT_ATTENTION):

        def step(backend=backend):
            with sdpa_kernel([backend]):
                y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
            y.backward(dy)

        try:
            ms = timed(step)
        except RuntimeError as e:
            print(f"attention d{depth} {backend.name}: not available ({str(e).splitlines()[0][:120]})")
            continue
        q.grad = None
        step()
        out = (q.grad.clone(),)
        q.grad = k.grad = v.grad = None
        err = "" if ref is None else f", dq rel. diff to flash {rel(out[0], ref[0]):.1e}"
        ref = ref or out
        print(f"attention d{depth} {backend.name}: fwd+bwd {ms:.2f} ms = {flops / ms / 1e9:.0f} TFLOP/s{err}")
    attention_fa4(depth, q, k, v, dy, flops, ref)


def attention_fa4(depth, q, k, v, dy, flops, ref):
    """FlashAttention-4 (the optional flash_attn.cute package) where it is installed: called directly, and through
    SDPA's flash backend after torch's activate_flash_attention_impl("FA4") (the route a compiled model would take)."""
    try:
        from flash_attn.cute import flash_attn_func
    except Exception as e:  # not installed here
        print(f"attention d{depth} FA4: not available ({type(e).__name__}: {str(e).splitlines()[0][:120]})")
        return
    from torch.nn.attention import SDPBackend, activate_flash_attention_impl, restore_flash_attention_impl, sdpa_kernel

    qd, kd, vd = (t.detach().transpose(1, 2).contiguous().requires_grad_() for t in (q, k, v))  # (B, T, H, D)
    dyd = dy.transpose(1, 2).contiguous()

    def direct():
        out = flash_attn_func(qd, kd, vd, causal=True)
        (out[0] if isinstance(out, tuple) else out).backward(dyd)

    def through_sdpa():
        with sdpa_kernel([SDPBackend.FLASH_ATTENTION]):
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        y.backward(dy)

    for label, fn in (("flash_attn_func", direct), ("SDPA flash backend", through_sdpa)):
        try:
            if fn is through_sdpa:
                activate_flash_attention_impl("FA4")
            ms = timed(fn)
            print(f"attention d{depth} FA4 ({label}): fwd+bwd {ms:.2f} ms = {flops / ms / 1e9:.0f} TFLOP/s")
        except Exception as e:  # an FA4 build whose API this torch's wrapper does not match
            print(f"attention d{depth} FA4 ({label}): failed ({type(e).__name__}: {str(e).splitlines()[0][:160]})")
    q.grad = k.grad = v.grad = None
    restore_flash_attention_impl()


def attention_compiled(depth, mode, B=32, T=2048, D=128):
    """Which SDPA kernel a compiled model runs under each backend setting, and its time (fwd+bwd, one layer)."""
    from torch.nn.attention import SDPBackend, sdpa_kernel
    from torch.profiler import ProfilerActivity, profile

    torch._dynamo.reset()
    C = depth * 64
    H = C // D
    ctx = None
    if mode == "priority":
        ctx = sdpa_kernel(
            [SDPBackend.CUDNN_ATTENTION, SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION, SDPBackend.MATH],
            set_priority=True,
        )
        ctx.__enter__()
    elif mode == "cudnn-only":  # cuDNN, with only the math kernel as fallback
        ctx = sdpa_kernel([SDPBackend.CUDNN_ATTENTION, SDPBackend.MATH], set_priority=True)
        ctx.__enter__()
    lin = torch.nn.Linear(C, 3 * C, bias=False, device="cuda")

    def block(x):
        q, k, v = lin(x).view(B, T, 3, H, D).unbind(2)
        q, k = F.rms_norm(q, (D,)), F.rms_norm(k, (D,))
        y = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), is_causal=True)
        return y.transpose(1, 2).reshape(B, T, C)

    fn = torch.compile(block, dynamic=False)
    x = torch.randn(B, T, C, device="cuda", dtype=torch.bfloat16)

    def step():
        with torch.autocast("cuda", dtype=torch.bfloat16):
            y = fn(x)
        y.float().square().mean().backward()

    ms = timed(step, reps=5)
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        step()
        torch.cuda.synchronize()
    names = sorted(
        {
            e.key[:60]
            for e in prof.key_averages()
            if any(w in e.key.lower() for w in ("flash", "cudnn", "fmha", "attention", "sdpa", "sm90", "xmma"))
        }
    )
    print(f"attention compiled d{depth} [{mode}]: block fwd+bwd {ms:.2f} ms; kernels {names[:6]}")
    if ctx is not None:
        ctx.__exit__(None, None, None)


def head(depth, N=65536, V=65536):
    C = depth * 64
    x = torch.randn(N, C, device="cuda", dtype=torch.bfloat16) * 0.5
    w = (torch.randn(V, C, device="cuda") * C**-0.5).requires_grad_()
    t = torch.randint(0, V, (N,), device="cuda")

    def classic(x, w, t):
        logits = F.linear(x, w).float()
        logits = 15 * torch.tanh(logits / 15)
        return F.cross_entropy(logits, t, ignore_index=-1)

    fns = {
        "classic": torch.compile(classic),
        "chunked": torch.compile(lambda x, w, t: softcap_cross_entropy(x, w, t, V, 15)),
        "chunked-compiled-pair": torch.compile(lambda x, w, t: softcap_cross_entropy(x, w, t, V, 15)),
    }
    grads = {}
    for name, fn in fns.items():
        fused_loss.KERNEL = "compiled" if name.endswith("compiled-pair") else "triton"
        xg = x.clone().requires_grad_()

        def step(fn=fn, xg=xg):
            with torch.autocast("cuda", dtype=torch.bfloat16):
                loss = fn(xg, w, t)
            loss.backward()
            return loss

        step()
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        xg.grad = w.grad = None
        loss = step()
        peak = (torch.cuda.max_memory_allocated() - base) / 2**30
        grads[name] = (loss.detach(), xg.grad.clone(), w.grad.clone())
        ms = timed(step)
        xg.grad = w.grad = None
        print(f"head d{depth} {name}: fwd+bwd {ms:.2f} ms, peak +{peak:.2f} GiB, loss {loss.item():.5f}")
    la, xa, wa = grads["classic"]
    for name in ("chunked", "chunked-compiled-pair"):
        lb, xb, wb = grads[name]
        print(
            f"head d{depth} {name} vs classic: loss diff {abs(la - lb).item():.2e}, dx rel. diff {rel(xb, xa):.1e}, "
            f"dW rel. diff {rel(wb, wa):.1e}"
        )
    fused_loss.KERNEL = "triton"


def loss_chunk(rows=8192, V=65536, C=1280):
    """One chunk's soft-cap + cross-entropy + logit gradient: compiled pair vs the Triton kernel's settings."""
    from nanochat import softcap_ce_kernel as K

    x = torch.randn(rows, C, device="cuda", dtype=torch.bfloat16)
    w = torch.randn(V, C, device="cuda", dtype=torch.bfloat16) * (3 * C**-0.5)  # logits ~ N(0, 9), some capped
    logits = x @ w.t()
    t = torch.randint(0, V, (rows,), device="cuda")
    t[::97] = -1
    inv_n = 1.0 / (t != -1).sum()
    pair = torch.compile(fused_loss._chunk_loss_and_grad)
    ref_loss, ref_g = pair(logits, t, 15.0, inv_n)
    gb = logits.numel() * logits.element_size() / 1e9
    ms = timed(lambda: pair(logits, t, 15.0, inv_n))
    print(f"loss chunk {rows}x{V}: compiled pair {ms:.3f} ms ({gb / ms * 1e3:.0f} GB/s of logits)")
    results = []
    for approx, block, warps, per_sm in itertools.product((False, True), (4096, 8192), (8, 16), (1, 2, 4, 8)):
        kw = dict(block=block, num_warps=warps, programs_per_sm=per_sm, approx_tanh=approx)
        g = logits.clone()
        try:
            loss = K.chunk_loss_and_grad_(g, t, 15.0, inv_n, **kw)
        except Exception as e:  # a setting Triton cannot compile (registers, shared memory)
            print(f"loss chunk triton {kw}: failed {type(e).__name__}")
            continue
        dl = abs(loss - ref_loss).item() / abs(ref_loss).item()
        dg = rel(g, ref_g)
        buf = logits.clone()
        ms_k = timed(lambda kw=kw, buf=buf: K.chunk_loss_and_grad_(buf, t, 15.0, inv_n, **kw))
        results.append((ms_k, kw, dl, dg))
        print(
            f"loss chunk triton {kw}: {ms_k:.3f} ms ({ms / ms_k:.2f}x), loss rel. diff {dl:.1e}, "
            f"grad rel. diff {dg:.1e}"
        )
    for ms_k, kw, dl, dg in sorted(results, key=lambda r: r[0])[:5]:
        print(f"loss chunk best: {ms_k:.3f} ms {kw} loss {dl:.1e} grad {dg:.1e}")


def rope(depth=20, B=32, T=2048, D=128):
    """One layer's rotary + QK norm (+ v) forward and backward, from a (B*T, 3*H*D) q/k/v product."""
    from nanochat import gpt
    from nanochat import rope_norm_kernel as K

    H, N = depth * 64 // D, B * T
    cos4, sin4 = gpt.rotary_tables(T, D, device="cuda")
    cos, sin = cos4.view(T, -1), sin4.view(T, -1)
    qkv = torch.randn(N, 3 * H * D, device="cuda", dtype=torch.bfloat16) * 2
    grads = [torch.randn(B, T, H, D, device="cuda", dtype=torch.bfloat16) for _ in range(3)]

    def torch_code(q, k, v, cos=cos4, sin=sin4):
        return gpt.norm(gpt.apply_rotary_emb(q, cos, sin)), gpt.norm(gpt.apply_rotary_emb(k, cos, sin)), v

    def fp32_reference():
        x = qkv.float().requires_grad_()
        out = torch_code(*x.view(B, T, 3 * H, D).split(H, dim=2), cos4.float(), sin4.float())
        torch.autograd.backward(out, [g.float() for g in grads])
        return out, x.grad

    compiled = torch.compile(torch_code)
    three = [t.detach().clone().requires_grad_() for t in qkv.view(B, T, 3 * H, D).split(H, dim=2)]
    one = qkv.detach().clone().requires_grad_()

    # torch.autograd.grad, not backward: no accumulation into .grad, which training does not do here either
    def three_gemms():  # the torch code: q, k, v contiguous, each from its own GEMM
        torch.autograd.grad(compiled(*[t.contiguous() for t in three]), three, grads)

    def one_gemm():  # the same code on split views of one product (tried and dropped on 12-04, nanochat/LOG.md)
        torch.autograd.grad(compiled(*one.view(B, T, 3 * H, D).split(H, dim=2)), one, grads)

    def kernels():
        out = K.rope_norm(one, cos, sin, T, H, H, H)[:3]
        torch.autograd.grad([o.view(B, T, H, D) for o in out], one, grads)

    # forward: q/k/v read and written; backward: their gradients read, q and k read, the input gradient written
    gb = 14 * N * H * D * 2 / 1e9
    ms = timed(lambda: qkv.clone())
    print(f"rope d{depth} bandwidth reference, a copy of the q/k/v product: {2 * qkv.nbytes / ms / 1e6:.0f} GB/s")
    for name, fn in (("compiled, three GEMM outputs", three_gemms), ("compiled, one GEMM's views", one_gemm)):
        ms = timed(fn)
        print(f"rope d{depth} {name}: {ms:.3f} ms fwd+bwd ({gb / ms * 1e3:.0f} GB/s for the minimum traffic)")
    (ref_q, ref_k, _), ref_dx = fp32_reference()
    results = []
    for rows, warps in itertools.product((4, 8, 16, 32, 64), (1, 2, 4, 8)):
        K.BLOCK_ROWS, K.NUM_WARPS = rows, warps
        one.grad = None
        q, k, v, _ = K.rope_norm(one, cos, sin, T, H, H, H)
        torch.autograd.backward([t.view(B, T, H, D) for t in (q, k, v)], grads)
        diffs = rel(q.view(B, T, H, D), ref_q), rel(k.view(B, T, H, D), ref_k), rel(one.grad, ref_dx)
        ms = timed(kernels)
        results.append((ms, rows, warps))
        print(
            f"rope d{depth} triton rows {rows} warps {warps}: {ms:.3f} ms ({gb / ms * 1e3:.0f} GB/s), rel. diff vs "
            f"fp32: q {diffs[0]:.1e} k {diffs[1]:.1e} dx {diffs[2]:.1e}"
        )
    for ms, rows, warps in sorted(results)[:3]:
        print(f"rope d{depth} best: {ms:.3f} ms with rows {rows} warps {warps}")


def head_chunks(depth, N=65536, V=65536):
    """The chunked head (Triton loss kernel) fwd+bwd at each chunk size: fewer, larger GEMMs against memory."""
    C = depth * 64
    x = (torch.randn(N, C, device="cuda", dtype=torch.bfloat16) * 0.5).requires_grad_()
    w = (torch.randn(V, C, device="cuda") * C**-0.5).requires_grad_()
    t = torch.randint(0, V, (N,), device="cuda")

    def step():
        with torch.autocast("cuda", dtype=torch.bfloat16):
            loss = softcap_cross_entropy(x, w, t, V, 15)
        torch.autograd.grad(loss, (x, w))

    default = fused_loss.CHUNK_ELEMENTS
    for elements in (2**28, 2**29, 2**30, 2**31):
        fused_loss.CHUNK_ELEMENTS = elements
        step()
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        step()
        peak = (torch.cuda.max_memory_allocated() - base) / 2**30
        ms = timed(step)
        print(
            f"head d{depth} chunk {elements // V} tokens: fwd+bwd {ms:.2f} ms per micro-batch "
            f"({ms * 8:.0f} ms per 8), peak +{peak:.2f} GiB"
        )
    fused_loss.CHUNK_ELEMENTS = default


def muon(depth=20):
    C = depth * 64
    shapes = [(C, C)] * 4 + [(4 * C, C), (C, 4 * C)]
    params = [torch.nn.Parameter(torch.randn(s, device="cuda") * 0.02) for _ in range(depth) for s in shapes]
    for p in params:
        p.grad = torch.randn_like(p) * 1e-3
    opt = Muon(params)

    def classic():  # one matrix at a time, as classic nanochat's Muon
        with torch.no_grad():
            for p in params:
                buf = opt.state[p]["momentum_buffer"]
                buf.lerp_(p.grad, 0.05)
                g = p.grad.lerp_(buf, 0.95)
                g = zeropower_via_newtonschulz5(g, steps=5)
                p.add_(g, alpha=-0.02 * max(1, p.size(-2) / p.size(-1)) ** 0.5)

    opt.step()  # creates the buffers, compiles the batched shapes
    print(
        f"muon d{depth}: per-matrix {timed(classic, reps=5):.1f} ms, batched by shape "
        f"{timed(opt.step, reps=5):.1f} ms per step ({len(params)} matrices)"
    )


def _quack_products(x, w, dy):
    """The same three products as quack's Hopper GEMMs (heuristic configs, as the trainer's opt-in MLP runs them),
    where quack-kernels is installed: whether its plain GEMMs beat cuBLAS on these shapes, beside its fusions."""
    try:
        from quack.gemm_interface import gemm as quack_gemm
    except ImportError:
        return {}
    return {
        "quack fwd": lambda: quack_gemm(x, w.t(), tuned=False),
        "quack dgrad": lambda: quack_gemm(dy, w, tuned=False),
        "quack wgrad": lambda: quack_gemm(dy.t(), x, tuned=False),
        "quack wgrad fp32 out": lambda: quack_gemm(dy.t(), x, out_dtype=torch.float32, tuned=False),
    }


def _products(x, w, dy, acc):
    """One Linear's products (y = x W^T, dx = dy W, dW = dy^T x) and other formulations of the weight gradient."""
    n, fan_in, fan_out = x.size(0), x.size(1), w.size(0)
    return _quack_products(x, w, dy) | {
        "fwd x @ w.T": lambda: x @ w.t(),
        "dgrad dy @ w": lambda: dy @ w,
        "wgrad dy.T @ x": lambda: dy.t() @ x,
        "wgrad (x.T @ dy).T": lambda: (x.t() @ dy).t(),
        "wgrad addmm fp32 acc": lambda: torch.addmm(acc, dy.t(), x, out_dtype=torch.float32),
        "wgrad split-K 2 bmm": lambda: torch.bmm(
            dy.t().reshape(fan_out, 2, n // 2).transpose(0, 1), x.view(2, n // 2, fan_in)
        ).sum(0),
    }


def _time_product(label, fn, flop, count):
    """One product's time, TFLOP/s and time per optimizer step (count calls); None where this torch lacks it."""
    try:
        ms = timed(fn, reps=20)
    except (RuntimeError, TypeError, NotImplementedError) as e:
        print(f"gemm {label}: failed ({str(e).splitlines()[0][:100]})")
        return None
    print(f"gemm {label:42s} {ms:7.3f} ms {flop / ms / 1e9:5.0f} TFLOP/s, {ms * count:7.1f} ms per step")
    return ms * count


# the products autograd runs (and quack's same three), summed per step by role
AUTOGRAD_CASES = {"fwd x @ w.T": "fwd", "dgrad dy @ w": "dgrad", "wgrad dy.T @ x": "wgrad"}
AUTOGRAD_CASES |= {f"quack {role}": f"quack {role}" for role in ("fwd", "dgrad", "wgrad")}


def gemm(depth, B=32, T=2048, accum=8, V=65536, chunk=8192):
    """Each product of one micro-batch as autograd runs it, then the same product formulated otherwise; 'per step'
    multiplies by its count in one optimizer step (accum micro-batches)."""
    C, N = depth * 64, B * T
    bf = dict(device="cuda", dtype=torch.bfloat16)
    total = {}
    for name, fan_in, fan_out in [("qkv", C, 3 * C), ("attn proj", C, C), ("mlp fc", C, 4 * C), ("mlp proj", 4 * C, C)]:
        x, w, dy = torch.randn(N, fan_in, **bf), torch.randn(fan_out, fan_in, **bf), torch.randn(N, fan_out, **bf)
        acc = torch.zeros(fan_out, fan_in, device="cuda")
        for case, fn in _products(x, w, dy, acc).items():
            per_step = _time_product(f"d{depth} {name} {case}", fn, 2 * N * fan_in * fan_out, depth * accum)
            if per_step is not None and case in AUTOGRAD_CASES:
                total[AUTOGRAD_CASES[case]] = total.get(AUTOGRAD_CASES[case], 0.0) + per_step
    print(
        f"gemm d{depth} blocks per step as autograd runs them: "
        + ", ".join(f"{k} {v:.0f} ms" for k, v in total.items())
    )
    x, w, g = torch.randn(chunk, C, **bf), torch.randn(V, C, **bf), torch.randn(chunk, V, **bf)
    acc = torch.zeros(V, C, device="cuda")
    head = {
        "head logits x @ w.T": lambda: x @ w.t(),
        "head dgrad g @ w": lambda: g @ w,
        "head wgrad addmm fp32": lambda: torch.addmm(acc, g.t(), x, out_dtype=torch.float32),
        "head wgrad g.T @ x": lambda: g.t() @ x,
    }
    for case, fn in head.items():
        _time_product(f"d{depth} {case}", fn, 2 * chunk * C * V, accum * (N // chunk))
    n = 8192
    a, b = torch.randn(n, n, **bf), torch.randn(n, n, **bf)
    _time_product(f"{n}^3 reference", lambda: a @ b, 2 * n**3, 1)


if __name__ == "__main__":
    torch.backends.cuda.matmul.allow_tf32 = True
    print(torch.cuda.get_device_name(), "torch", torch.__version__, "cudnn", torch.backends.cudnn.version())
    parts = sys.argv[1:] or ["attention", "head", "muon", "loss", "rope", "gemm"]
    if "attention" in parts or "fa4" in parts:  # fa4: the backends alone (FlashAttention-4 among them where installed)
        attention(20)
    if "attention" in parts:
        for mode in ("default", "priority", "cudnn-only"):
            attention_compiled(20, mode)
    if "loss" in parts:
        loss_chunk()
    if "head" in parts:
        for d in (12, 20):
            head(d)
    if "muon" in parts:
        muon(20)
    if "rope" in parts:
        rope(20)
    if "headchunks" in parts:
        head_chunks(20)
    if "gemm20" in parts:
        gemm(20)
    if "gemm" in parts:
        for d in (20, 12):
            gemm(d)
        torch.backends.cuda.preferred_blas_library("cublaslt")
        print("gemm: the same with preferred_blas_library('cublaslt')")
        gemm(20)
