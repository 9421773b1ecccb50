"""
The opt-in float8 matmuls (nanochat/fp8.py, base_train --fp8=1). torch has _scaled_mm on the CPU too, so the
products themselves run here: the conversion keeps the parameters and the state dict, touches only the block
Linears, and gives the loss and gradients of the bf16/fp32 model to float8 rounding; without gradients it is the
plain model bit for bit; base_train refuses --fp8=1 where there is no float8 GPU, before reading any data.
"""

import pytest
import torch
from nc_helpers import run_module

from nanochat.fp8 import Fp8Linear, convert_to_fp8
from nanochat.gpt import GPT, GPTConfig

CFG = GPTConfig(sequence_len=64, vocab_size=256, n_layer=2, n_head=2, n_kv_head=2, n_embd=128)


def random_model(seed=0):
    """A model with every weight random: the real init zeroes the output projections, so most gradients
    would be zero at step 0 and compare equal whatever the products do."""
    torch.manual_seed(seed)
    model = GPT(CFG)
    model.init_weights()
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0, 0.05)
    return model


def batch(seed=1):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (4, 64), generator=g), torch.randint(0, 256, (4, 64), generator=g)


def test_conversion_touches_only_the_block_linears_and_keeps_the_state_dict():
    model = random_model()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    assert convert_to_fp8(model) == 6 * CFG.n_layer  # c_q, c_k, c_v, attn c_proj, c_fc, mlp c_proj
    assert type(model.lm_head) is torch.nn.Linear
    assert all(type(m) is Fp8Linear for m in model.transformer.h.modules() if isinstance(m, torch.nn.Linear))
    after = model.state_dict()
    assert list(after) == list(before)
    assert all(torch.equal(after[k], before[k]) for k in before)


def test_loss_and_gradients_match_the_plain_model_to_float8_rounding():
    ref, fp8 = random_model(), random_model()
    convert_to_fp8(fp8)
    x, y = batch()
    ref(x, y).backward()
    loss = fp8(x, y)
    loss.backward()
    assert loss.item() == pytest.approx(ref(x, y).item(), rel=1e-2)
    for (name, a), (_, b) in zip(ref.named_parameters(), fp8.named_parameters(), strict=True):
        assert b.grad is not None and b.grad.dtype == a.grad.dtype, name
        rel = ((a.grad - b.grad).norm() / a.grad.norm()).item()
        assert rel < 0.25, (name, rel)  # e4m3 activations/weights, e5m2 gradients: ~10% here
    # the products really ran in float8: the block gradients differ from the fp32 ones
    assert not torch.equal(ref.transformer.h[0].mlp.c_fc.weight.grad, fp8.transformer.h[0].mlp.c_fc.weight.grad)


def test_without_gradients_the_plain_product_runs():
    ref, fp8 = random_model(), random_model()
    convert_to_fp8(fp8)
    x, _ = batch()
    with torch.no_grad():
        assert torch.equal(ref(x), fp8(x))


def test_base_train_refuses_fp8_without_a_float8_gpu(tmp_path):
    p = run_module(tmp_path, "nanochat.base_train", "--fp8=1", "--device_type=cpu", check=False, timeout=120)
    assert p.returncode == 2
    assert "--fp8=1 needs a CUDA GPU of compute capability 8.9 or newer" in p.stdout + p.stderr
    assert not (tmp_path / "base_checkpoints").exists()
