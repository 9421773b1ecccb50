"""The MLP as one autograd Function (NANOCHAT_MLP_KERNEL=quack-epilogue's body; its torch kernel here): the same output
and gradients as the MLP in torch code, with or without split weight gradients, under autocast and under
torch.compile's tracing."""

import pytest
import torch
import torch.nn.functional as F

from nanochat.relu_sq_mlp import relu_sq_mlp


def torch_mlp(x, w1, w2):
    return F.linear(F.relu(F.linear(x, w1)).square(), w2)


def _grads(fn, x, w1, w2, g):
    x, w1, w2 = (t.detach().requires_grad_() for t in (x, w1, w2))
    y = fn(x, w1, w2)
    return (y, *torch.autograd.grad(y, (x, w1, w2), g.to(y.dtype)))


def _inputs(dtype=torch.float32):
    torch.manual_seed(0)
    x = torch.randn(4, 64, 32, dtype=dtype)
    w1, w2 = torch.randn(128, 32) * 32**-0.5, torch.randn(32, 128) * 128**-0.5
    return x, w1, w2, torch.randn(4, 64, 32, dtype=dtype)


@pytest.mark.parametrize("split", [1, 2, 4])
def test_fp32_same_output_and_gradients_as_torch_code(split):
    x, w1, w2, g = _inputs()
    got = _grads(lambda *a: relu_sq_mlp(*a, split=split), x, w1, w2, g)
    want = _grads(torch_mlp, x, w1, w2, g)
    assert [t.shape for t in got] == [t.shape for t in want]
    assert [t.dtype for t in got] == [torch.float32] * 4
    for a, b in zip(got, want, strict=True):
        assert torch.allclose(a, b, rtol=1e-4, atol=1e-4)


def test_bf16_autocast_as_close_to_fp32_as_the_torch_code():
    x, w1, w2, g = _inputs(torch.bfloat16)
    exact = _grads(torch_mlp, x.float(), w1, w2, g.float())
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got = _grads(lambda *a: relu_sq_mlp(*a, split=2), x, w1, w2, g)
        ref = _grads(torch_mlp, x, w1, w2, g)
    assert got[0].dtype == torch.bfloat16 and got[2].dtype == got[3].dtype == torch.float32
    for a, b, e in zip(got, ref, exact, strict=True):
        err, err0 = ((a.float() - e).norm() / e.norm()).item(), ((b.float() - e).norm() / e.norm()).item()
        assert err < max(1.5 * err0, 2e-3) and err < 1e-2, (err, err0)


def test_traced_by_torch_compile_as_the_trainer_compiles_it():
    x, w1, w2, g = _inputs()

    def grads(fn):
        params = [t.detach().requires_grad_() for t in (x, w1, w2)]
        (fn(*params) * g).sum().backward()
        return [p.grad for p in params]

    compiled = torch.compile(lambda *a: relu_sq_mlp(*a, split=2), backend="aot_eager", fullgraph=True)
    for got, want in zip(grads(compiled), grads(torch_mlp), strict=True):
        assert torch.allclose(got, want, rtol=1e-4, atol=1e-4)


def test_auto_takes_the_quack_epilogues_only_when_base_train_asks_and_quack_runs(monkeypatch):
    # measured in base training only: mid and SFT (other batch shapes) keep the torch code unless told otherwise
    from nanochat import gpt

    monkeypatch.delenv("NANOCHAT_WGRAD_SPLIT", raising=False)
    for kernel, quack, chosen in (("auto", object(), True), ("auto", None, False), ("torch", object(), False)):
        monkeypatch.setattr(gpt, "MLP_KERNEL", kernel)
        monkeypatch.setattr(gpt, "_QUACK_MLP", quack)
        monkeypatch.setattr(gpt, "_QUACK_EPILOGUE", False)
        monkeypatch.setattr(gpt, "WGRAD_SPLIT", 1)
        assert "quack-epilogue" not in gpt.mlp_kernels()  # before base_train or mid_train asks: SFT, chat
        gpt.use_auto_kernels()
        assert gpt._QUACK_EPILOGUE is chosen
        assert ("MLP: quack-epilogue kernels, weight gradients split 2" in gpt.mlp_kernels()) is chosen
