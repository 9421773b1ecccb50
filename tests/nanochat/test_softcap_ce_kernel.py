"""
The Triton loss kernel (nanochat/softcap_ce_kernel.py) where Triton is installed (CUDA builds of torch; not CI's
CPU-only torch, so these skip there): its numbers against fused_loss's plain-torch chunk under Triton's CPU
interpreter, and that it compiles for Hopper. Its speed and its numbers on a GPU are measured by
`python bench/gpu_kernels.py loss head` and the trainer's side-by-side run (nanochat/LOG.md).
"""

import pytest
from nc_helpers import run_interpreted, skip_where_interpreter_cannot

pytest.importorskip("triton", reason="Triton is not installed (CPU-only torch build)")


@pytest.fixture(scope="module")
def interpreter_runs_persistent_loops():
    # Triton 3.6's interpreter (the version beside torch 2.11) cannot run a loop that starts at a program id, as the
    # kernel's persistent row loop does: its program ids are 1-element arrays there. The compiled kernel is fine.
    probe = """
        import torch, triton, triton.language as tl
        @triton.jit
        def rows(x, n):
            for r in range(tl.program_id(0), n, tl.num_programs(0)):
                tl.store(x + r, 1.0)
        x = torch.zeros(5)
        rows[(2,)](x, 5)
        assert x.sum() == 5
        """
    skip_where_interpreter_cannot(
        probe,
        "only 0-dimensional arrays can be converted to Python scalars",
        "the interpreter cannot run a loop from a program id",
    )


def test_interpreted_kernel_matches_the_plain_torch_chunk(interpreter_runs_persistent_loops):
    # 37 rows over 3 programs (the persistent loop), 1000 columns in blocks of 256 (a masked last block, the reverse
    # second pass), ignored targets and targets in the first and last column; logits large enough to be soft-capped
    out = run_interpreted(
        """
        import torch
        from nanochat import softcap_ce_kernel as K
        from nanochat.fused_loss import _chunk_loss_and_grad
        torch.manual_seed(0)
        logits = (torch.randn(37, 1000) * 20).to(torch.bfloat16)
        t = torch.randint(0, 1000, (37,))
        t[3] = t[20] = -1
        t[10], t[11] = 999, 0
        inv_n = 1.0 / (t != -1).sum()
        ref_loss, ref_g = _chunk_loss_and_grad(logits, t, 15.0, inv_n)
        g = logits.clone()
        loss = K.chunk_loss_and_grad_(g, t, 15.0, inv_n, block=256, num_warps=4, programs_per_sm=3, approx_tanh=False)
        diff = (g.float() - ref_g.float()).abs()
        ulp = ref_g.float().abs().clamp_min(2**-30) * 2**-7  # one bf16 step
        print(abs(loss - ref_loss).item() / ref_loss.item(), (diff > ulp).sum().item(), g[3].abs().max().item(),
              g[20].abs().max().item(), diff.max().item(), ref_g.float().abs().max().item())
        """
    )
    loss_rel, off_by_more_than_a_bf16_step, ignored_row_3, ignored_row_20, max_diff, max_grad = map(float, out.split())
    assert loss_rel < 1e-6
    assert off_by_more_than_a_bf16_step == 0  # the gradient is the same bf16 number, or its neighbour
    assert ignored_row_3 == ignored_row_20 == 0.0  # rows with target -1 get no gradient
    assert 0 < max_diff and max_grad > 1e-3  # a real gradient, written over the logits


def test_compiles_for_hopper_with_both_tanh_variants():
    # the interpreter accepts what the compiler rejects (it once read a Python global); compile both variants for
    # sm_90 without a GPU and check that the hardware tanh is the one instruction the fast variant uses
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    from nanochat import softcap_ce_kernel as K

    signature = {
        "logits_ptr": "*bf16",
        "targets_ptr": "*i64",
        "loss_ptr": "*fp32",
        "inv_n_ptr": "*fp32",
        "n_rows": "i32",
        "n_cols": "i32",
        "stride_row": "i32",
        "softcap": "fp32",
        "BLOCK": "constexpr",
        "APPROX_TANH": "constexpr",
    }
    for approx in (True, False):
        src = ASTSource(
            fn=K._softcap_ce_rows, signature=signature, constexprs={"BLOCK": K.BLOCK, "APPROX_TANH": approx}
        )
        compiled = triton.compile(src, target=GPUTarget("cuda", 90, 32), options={"num_warps": K.NUM_WARPS})
        assert ("tanh.approx.f32" in compiled.asm["ptx"]) == approx
