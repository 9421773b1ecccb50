"""The split-K Linear (NANOCHAT_WGRAD_SPLIT): same output and input gradient as F.linear, the weight gradient equal up
to the rounding of its parts, under autocast and under torch.compile's tracing."""

import pytest
import torch
import torch.nn.functional as F

from nanochat.splitk_linear import splitk_linear, weight_grad


def _grads(fn, x, w, g):
    x, w = x.detach().requires_grad_(), w.detach().requires_grad_()
    y = fn(x, w)
    return (y, *torch.autograd.grad(y, (x, w), g.to(y.dtype)))


@pytest.mark.parametrize("split", [2, 4])
def test_fp32_matches_linear(split):
    torch.manual_seed(0)
    x, w = torch.randn(4, 64, 32), torch.randn(48, 32)
    g = torch.randn(4, 64, 48)
    y, dx, dw = _grads(lambda x, w: splitk_linear(x, w, split), x, w, g)
    y0, dx0, dw0 = _grads(F.linear, x, w, g)
    assert torch.equal(y, y0) and torch.equal(dx, dx0)
    assert dw.dtype == torch.float32 and torch.allclose(dw, dw0, rtol=1e-5, atol=1e-4)


def test_bf16_autocast_same_output_and_input_grad_weight_grad_as_exact():
    torch.manual_seed(0)
    x, w = torch.randn(4, 64, 32, dtype=torch.bfloat16), torch.randn(48, 32)
    g = torch.randn(4, 64, 48, dtype=torch.bfloat16)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y, dx, dw = _grads(lambda x, w: splitk_linear(x, w, 2), x, w, g)
        y0, dx0, dw0 = _grads(F.linear, x, w, g)
    assert y.dtype == torch.bfloat16 and torch.equal(y, y0) and torch.equal(dx, dx0)
    exact = g.float().flatten(0, 1).t() @ x.float().flatten(0, 1)
    err, err0 = ((dw - exact).norm() / exact.norm()).item(), ((dw0 - exact).norm() / exact.norm()).item()
    assert dw.dtype == torch.float32 and err < 1.2 * err0 and err < 4e-3


def test_tokens_that_do_not_divide_take_one_product():
    dy, x = torch.randn(7, 5), torch.randn(7, 3)
    assert torch.allclose(weight_grad(dy, x, 2), dy.t() @ x)


def test_traced_by_torch_compile_as_the_trainer_compiles_it():
    torch.manual_seed(0)
    x, w1, w2 = torch.randn(64, 16), torch.randn(32, 16), torch.randn(16, 32)

    def mlp(linear):
        return lambda x, w1, w2: linear(F.relu(linear(x, w1)).square(), w2).square().sum()

    def grads(fn):
        params = [t.detach().requires_grad_() for t in (x, w1, w2)]
        fn(*params).backward()
        return [p.grad for p in params]

    compiled = grads(torch.compile(mlp(lambda a, b: splitk_linear(a, b, 2)), backend="aot_eager", fullgraph=True))
    for got, want in zip(compiled, grads(mlp(F.linear)), strict=True):
        assert torch.allclose(got, want, rtol=1e-4, atol=1e-3)


def test_the_env_setting_is_read_once_and_a_bad_value_runs_unsplit_on_cpu_unchanged():
    import os
    import subprocess
    import sys

    code = (
        "import torch; from nanochat import gpt; torch.manual_seed(0)\n"
        "m = gpt.MLP(gpt.GPTConfig(n_embd=16)); x = torch.randn(2, 3, 16)\n"
        "print(gpt.WGRAD_SPLIT, torch.equal(m(x), m.c_proj(torch.relu(m.c_fc(x)).square())))"
    )
    for value, split in ((None, "1"), ("2", "2"), ("auto", "1"), ("x", "1"), ("0", "1")):
        env = {k: v for k, v in os.environ.items() if k not in ("NANOCHAT_WGRAD_SPLIT", "NANOCHAT_MLP_KERNEL")}
        env |= {"NANOCHAT_WGRAD_SPLIT": value} if value else {}
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
        assert out.returncode == 0 and out.stdout.split() == [split, "True"], out.stdout + out.stderr
        assert ("not a positive integer or auto" in out.stderr) == (value in ("x", "0"))
