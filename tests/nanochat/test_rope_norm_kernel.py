"""
Rotary + QK norm as Triton kernels (nanochat/rope_norm_kernel.py) where Triton is installed (CUDA builds of torch;
CI's CPU-only torch has none, so these skip there): forward and backward against gpt.py's torch code under Triton's
CPU interpreter, that both kernels compile for Hopper, and on a GPU that a compiled model gives the same loss and
gradients with the kernels as with the torch code. Speed: `python bench/gpu_kernels.py rope` (nanochat/LOG.md).
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from nc_helpers import run_interpreted, skip_where_interpreter_cannot

pytest.importorskip("triton", reason="Triton is not installed (CPU-only torch build)")

ROOT = Path(__file__).resolve().parents[2]

# q/k/v from one product (GQA: 3 query heads, 1 key/value head) or q alone (the three-GEMM path, k and v empty);
# 2 x 7 tokens x 3 or 5 query heads = 42 or 70 rows, and 14 of k, leave a masked last block (asserted below); the
# tables start at position 3 (a KV cache offset); the gradient of q comes heads-major in memory, not (tokens, heads, D)-dense
CHECK = """
import torch
from nanochat import gpt
from nanochat import rope_norm_kernel as K

torch.manual_seed(0)
B, T, D, nq, nk, nv = 2, 7, 16, {nq}, {nk}, {nv}
cos4, sin4 = (t[:, 3:] for t in gpt.rotary_tables(T + 3, D))
x = (torch.randn(B * T, (nq + nk + nv) * D) * 3).bfloat16()

def torch_code(dtype):  # gpt.py's code, in bf16 as eager torch rounds it op by op, or in fp32 throughout
    x_ = x.to(dtype, copy=True).requires_grad_()
    c, s = cos4.to(dtype), sin4.to(dtype)
    q, k, v = x_.view(B, T, nq + nk + nv, D).split([nq, nk, nv], dim=2)
    out = [gpt.norm(gpt.apply_rotary_emb(q, c, s)), gpt.norm(gpt.apply_rotary_emb(k, c, s)), v]
    torch.autograd.backward(out, [g.to(dtype) for g in grads])
    return out, x_.grad

grads = [torch.randn(B, T, n, D).bfloat16() for n in (nq, nk, nv)]
ref, ref_dx = torch_code(torch.float32)
eager, eager_dx = torch_code(torch.bfloat16)

kx = x.clone().requires_grad_()
out = K.rope_norm(kx, cos4.view(T, -1), sin4.view(T, -1), T, nq, nk, nv)
dq = grads[0].reshape(B * T, nq, D).transpose(0, 1).contiguous().transpose(0, 1)
assert nq == 0 or dq.stride(1) != D  # the kernel reads the strides
kgrads = [dq] + [g.reshape(B * T, -1, D) for g in grads[1:]]
torch.autograd.backward([t for t in out[:3] if t.numel()], [g for t, g in zip(out[:3], kgrads) if t.numel()])

def off(a, b):  # elements further apart than one bf16 step of the larger magnitude
    a, b = a.float().reshape(-1), b.float().reshape(-1)
    return int(((a - b).abs() > a.abs().maximum(b.abs()).clamp_min(2**-20) * 2**-7).sum())

def rel(a, b):
    return float((a.float() - b.float()).norm() / b.float().norm())

print(off(out[0], ref[0]), off(out[1], ref[1]), off(out[2], ref[2]), off(eager[0], ref[0]) + off(eager[1], ref[1]),
      rel(kx.grad, ref_dx), rel(eager_dx, ref_dx), off(kx.grad[:, (nq + nk) * D:], ref_dx[:, (nq + nk) * D:]),
      float(kx.grad.detach().float().abs().max()), float(out[3].min()))
"""


@pytest.fixture(scope="module")
def interpreter_runs_wrapped_kernels():
    # torch 2.11's wrap_triton refuses the interpreter's kernels (TRITON_INTERPRET=1 makes @triton.jit return an
    # InterpretedFunction); later torch runs them eagerly. The compiled kernels are not affected: the CUDA tests run them.
    probe = """
        import torch, triton, triton.language as tl
        from torch.library import wrap_triton
        @triton.jit
        def one(x):
            tl.store(x, 1.0)
        x = torch.zeros(1)
        wrap_triton(one)[(1,)](x)
        assert x.item() == 1
        """
    skip_where_interpreter_cannot(
        probe,
        "wrap_triton only works on functions annotated with triton.jit",
        "wrap_triton refuses interpreted kernels",
    )


def interpreted_numbers(code):
    return [float(v) for v in run_interpreted(code).split()]


@pytest.mark.parametrize("heads", [(3, 1, 1), (5, 0, 0)], ids=["one-qkv-product", "q-alone"])
def test_interpreted_kernels_match_the_torch_code(heads, interpreter_runs_wrapped_kernels):
    from nanochat.rope_norm_kernel import BLOCK_ROWS

    nq, nk, nv = heads
    assert all(2 * 7 * n % BLOCK_ROWS for n in (nq, nk) if n)  # each launch ends in a partly masked block
    numbers = interpreted_numbers(CHECK.format(nq=nq, nk=nk, nv=nv))
    q_off, k_off, v_off, eager_qk_off, dx_rel, eager_dx_rel, dv_off, max_grad, min_rstd = numbers
    # against the torch code in fp32: the forward computes in fp32 (as inductor's compiled code does) and rounds
    # once, so q and k are the fp32 result's bf16 neighbours; eager bf16, which rounds op by op, is not
    assert q_off == k_off == 0 and eager_qk_off > 0
    # the backward reads the saved bf16 output instead of recomputing it: about one bf16 rounding more than fp32
    # math, as much as eager bf16 torch (1.7e-3 here)
    assert dx_rel < 2 * eager_dx_rel and dx_rel < 5e-3
    assert v_off == dv_off == 0  # v is copied, and its gradient too
    assert max_grad > 0.1 and min_rstd > 0  # real gradients, and every row's rstd written


# the kernel path's two shapes: "fused" (q/k/v from one product of the concatenated weights) and "split" (q, k and v
# each from its own Linear's product, as fp8.py's Linears give them); "compiled" is the torch code
SET_MODE = """
def set_rope_mode(model, mode):
    gpt.ROPE_KERNEL = "compiled" if mode == "compiled" else "fused"
    if mode == "split":
        class OwnProduct(torch.nn.Linear):
            pass

        for block in model.transformer.h:
            for linear in (block.attn.c_q, block.attn.c_k, block.attn.c_v):
                linear.__class__ = OwnProduct
"""

MODEL_CHECK = (
    """
import torch
from nanochat import gpt
from nanochat import rope_norm_kernel as K
"""
    + SET_MODE
    + """

def loss_and_grads(mode):  # a 2-layer GQA model in fp32, the kernels forced on (the interpreter runs them on CPU)
    K.supported = lambda device, head_dim: True  # the interpreter runs the kernels on CPU
    torch.manual_seed(0)
    config = gpt.GPTConfig(sequence_len=16, vocab_size=64, n_layer=2, n_head=4, n_kv_head=2, n_embd=64)
    model = gpt.GPT(config)
    set_rope_mode(model, mode)
    model.init_weights()
    for block in model.transformer.h:  # init zeroes the output projections; make every path carry gradient
        torch.nn.init.normal_(block.attn.c_proj.weight, std=0.1)
        torch.nn.init.normal_(block.mlp.c_proj.weight, std=0.1)
    torch.nn.init.normal_(model.lm_head.weight, std=0.1)
    idx = torch.randint(0, 64, (2, 16))
    loss = model(idx, targets=idx.roll(-1, 1))
    loss.backward()
    return loss.item(), {n: p.grad for n, p in model.named_parameters()}

ref_loss, ref = loss_and_grads("compiled")
loss, grads = loss_and_grads("{mode}")
print(abs(loss - ref_loss), max(((grads[n] - ref[n]).norm() / ref[n].norm()).item() for n in ref),
      min(ref[n].norm().item() for n in ref))
"""
)


@pytest.mark.parametrize("mode", ["fused", "split"])
def test_interpreted_model_same_loss_and_gradients(mode, interpreter_runs_wrapped_kernels):
    # the model's kernel path (q/k/v as one product of the concatenated weights, or three) against its torch code,
    # in fp32 where both compute the same numbers up to summation order
    loss_diff, worst_grad_rel, smallest_grad = interpreted_numbers(MODEL_CHECK.replace("{mode}", mode))
    assert loss_diff < 1e-5 and worst_grad_rel < 1e-4 and smallest_grad > 0


def test_fake_tensor_trace_of_forward_and_backward():
    # what torch.compile sees: both ops trace as single nodes on fake tensors (no kernel runs), the backward
    # registered through autograd, and no zeros materialised for the unused rstd output
    from torch.fx.experimental.proxy_tensor import make_fx

    from nanochat import rope_norm_kernel as K

    def forward_backward(x, cos, sin, gq, gk, gv):
        q, k, v, _ = K.rope_norm(x, cos, sin, 8, 3, 1, 1)
        return torch.autograd.grad([q, k, v], [x], [gq, gk, gv])[0]

    x = torch.randn(16, 5 * 16, dtype=torch.bfloat16, requires_grad=True)
    tables = [torch.randn(8, 8, dtype=torch.bfloat16) for _ in range(2)]
    grads = [torch.randn(16, n, 16, dtype=torch.bfloat16) for n in (3, 1, 1)]
    code = make_fx(forward_backward, tracing_mode="fake")(x, *tables, *grads).code
    assert code.count("torch.ops.nanochat.rope_norm.default(") == 1
    assert code.count("torch.ops.nanochat.rope_norm_backward.default(") == 1
    assert "zeros" not in code and "triton" not in code


def test_both_kernels_compile_for_hopper():
    # the interpreter accepts what the compiler rejects; compile both kernels, rotating and copying, for sm_90
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    from nanochat import rope_norm_kernel as K

    ints = ["n_rows", "H", "T", "stride_ct", "stride_xn", "col0", "stride_dn", "stride_dh"]
    for fn in (K._rope_norm_fwd, K._rope_norm_bwd):
        names = fn.arg_names
        signature = {n: "i32" if n in ints else "fp32" if n == "eps" else "*bf16" for n in names}
        signature.update({n: "*fp32" for n in names if n == "rstd_ptr"})
        signature.update({n: "constexpr" for n in ("HALF", "BLOCK_R", "ROTATE")})
        for rotate in (True, False):
            constexprs = {"HALF": 64, "BLOCK_R": K.BLOCK_ROWS, "ROTATE": rotate}
            src = ASTSource(fn=fn, signature=signature, constexprs=constexprs)
            compiled = triton.compile(src, target=GPUTarget("cuda", 90, 32), options={"num_warps": K.NUM_WARPS})
            assert ("rsqrt" in compiled.asm["ptx"]) == (rotate and fn is K._rope_norm_fwd)


GRAPH_CHECK = (
    """
import json, math, re
import torch
import triton
from torch._dynamo.backends.common import aot_autograd
from torch._functorch.partitioners import min_cut_rematerialization_partition
from triton.backends.compiler import GPUTarget
from nanochat import gpt
from nanochat import rope_norm_kernel as K
"""
    + SET_MODE
    + """

class Hopper:  # torch reads the kernels' accesses from their Triton IR, built for the driver's target
    def get_current_target(self):
        return GPUTarget("cuda", 90, 32)


triton.runtime.driver.set_active(Hopper())


class Partitioned(Exception):
    pass


def graphs(mode, n_layer):  # what torch.compile gives inductor: forward and backward as inductor partitions them
    got = {}

    def partition(joint, inputs, **kwargs):
        fw, bw = min_cut_rematerialization_partition(joint, inputs, **kwargs)
        saved = next(n for n in fw.graph.nodes if n.op == "output").args[0][1:]
        got.update(fw=fw.code, bw=bw.code, saved=sum(math.prod(n.meta["val"].shape) for n in saved))
        raise Partitioned  # the kernels cannot run on the CPU; the graphs are what is checked

    K.supported = lambda device, head_dim: True  # gpt's own choice of path is traced: a graph break fails fullgraph
    config = gpt.GPTConfig(sequence_len=16, vocab_size=64, n_layer=n_layer, n_head=4, n_kv_head=2, n_embd=64)
    model = gpt.GPT(config)
    set_rope_mode(model, mode)
    model.chunked_loss = False
    backend = aot_autograd(fw_compiler=None, partition_fn=partition)
    idx = torch.zeros(2, 16, dtype=torch.long)
    try:
        torch.compile(model, backend=backend, fullgraph=True)(idx, targets=idx)
    except Exception as e:
        assert "Partitioned" in repr(e), repr(e)[:2000]
    torch._dynamo.reset()
    launch = lambda code, arg: len(re.findall(r"triton_kernel_wrapper_functional\\(.*'" + arg + "'", code))
    copies = lambda code: len(re.findall(r"\\b(?:new_zeros|clone|slice_scatter)\\(", code))
    return dict(fw_rope=launch(got["fw"], "x_ptr"), fw_grad=launch(got["fw"], "dy_ptr"),
                bw_rope=launch(got["bw"], "x_ptr"), bw_grad=launch(got["bw"], "dy_ptr"),
                zero_grads=len(re.findall(r"'dy_ptr': new_zeros", got["bw"])),
                copies=copies(got["fw"]) + copies(got["bw"]), saved=got["saved"])


def eval_graph_ops(mode, n_layer):  # validation's call (no grad, per-token losses): also one graph, kernels in it
    got = {}

    def capture(gm, inputs):
        got["ops"] = len(re.findall(r"nanochat\\.rope_norm\\b", gm.code))
        raise Partitioned

    config = gpt.GPTConfig(sequence_len=16, vocab_size=64, n_layer=n_layer, n_head=4, n_kv_head=2, n_embd=64)
    model = gpt.GPT(config).eval()
    set_rope_mode(model, mode)
    idx = torch.zeros(2, 16, dtype=torch.long)
    try:
        with torch.no_grad():
            torch.compile(model, backend=capture, fullgraph=True)(idx, targets=idx, loss_reduction="none")
    except Exception as e:
        assert "Partitioned" in repr(e), repr(e)[:2000]
    torch._dynamo.reset()
    return got["ops"]


modes = ("compiled", "fused", "split")
print(json.dumps({
    "train": {f"{mode} {n}": graphs(mode, n) for mode in modes for n in (1, 3)},
    "eval": {f"{mode} {n}": eval_graph_ops(mode, n) for mode in modes for n in (1, 3)},
}))
"""
)


def test_compiled_model_graphs_hold_the_kernels():
    # what torch.compile makes of the model with the kernels on (no GPU: the target is given as sm_90, and the graphs
    # are taken from inductor's partitioner, not run): one graph, each layer's kernels in the forward and their
    # backward in the backward, fed the real gradients, with no copies around them and no forward kernel recomputed
    # in the backward, and the same number of elements saved for the backward as the torch code
    import json

    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("TRITON_INTERPRET", None)  # interpreted kernels are opaque Python to dynamo
    proc = subprocess.run([sys.executable, "-c", GRAPH_CHECK], env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.splitlines()[-1])
    got = result["train"]
    launches_per_layer = {"compiled": 0, "fused": 3, "split": 2}  # q, k and v's copy / q alone, k alone
    for key, graphs in got.items():
        mode, n_layer = key.split()
        n = launches_per_layer[mode] * int(n_layer)
        assert (graphs["fw_rope"], graphs["fw_grad"], graphs["bw_rope"], graphs["bw_grad"]) == (n, 0, 0, n), key
        assert graphs["zero_grads"] == graphs["copies"] == 0, key
        assert graphs["saved"] == got[f"compiled {n_layer}"]["saved"], key
    ops_per_layer = {"compiled": 0, "fused": 1, "split": 2}  # rope_norm calls
    for key, ops in result["eval"].items():
        mode, n_layer = key.split()
        assert ops == ops_per_layer[mode] * int(n_layer), key


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("mode", ["fused", "split"])
def test_cuda_compiled_model_same_loss_and_gradients(mode, monkeypatch):
    from nanochat import gpt

    def loss_and_grads(rope_mode):
        namespace = {"gpt": gpt, "torch": torch}
        exec(SET_MODE, namespace)
        monkeypatch.setattr(gpt, "ROPE_KERNEL", gpt.ROPE_KERNEL)  # restored after the test
        torch.manual_seed(0)
        config = gpt.GPTConfig(sequence_len=256, vocab_size=512, n_layer=2, n_head=2, n_kv_head=2, n_embd=256)
        model = gpt.GPT(config).cuda()
        namespace["set_rope_mode"](model, rope_mode)
        model.init_weights()
        for block in model.transformer.h:  # init zeroes the output projections; make every path carry gradient
            torch.nn.init.normal_(block.attn.c_proj.weight, std=0.02)
            torch.nn.init.normal_(block.mlp.c_proj.weight, std=0.02)
        idx = torch.randint(0, 512, (4, 256), device="cuda")
        with torch.autocast("cuda", dtype=torch.bfloat16):
            loss = torch.compile(model)(idx, targets=idx.roll(-1, 1))
        loss.backward()
        torch._dynamo.reset()
        return loss.item(), {n: p.grad.float() for n, p in model.named_parameters()}

    ref_loss, ref_grads = loss_and_grads("compiled")
    loss, grads = loss_and_grads(mode)
    assert abs(loss - ref_loss) < 1e-3
    for name, g in grads.items():
        ref = ref_grads[name]
        assert ((g - ref).norm() / ref.norm()).item() < 2e-2, name
