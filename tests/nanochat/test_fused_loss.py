"""
The chunked soft-capped cross-entropy (nanochat/fused_loss.py) against the classic head written out in plain torch:
logits = x @ W[:V].T, fp32, 15 * tanh(logits / 15), mean cross-entropy with ignore_index -1. Loss and the
gradients of x and W must agree, with several chunks, a padded vocab and ignored targets; on CPU in fp32 (to
rounding) and under bf16 autocast (to bf16 rounding); traced by torch.compile; and on CUDA when there is one.
"""

import pytest
import torch
import torch.nn.functional as F

from nanochat.fused_loss import softcap_cross_entropy

SOFTCAP = 15


def classic_loss(x, weight, targets, vocab_size):
    logits = F.linear(x, weight)[..., :vocab_size].float()
    logits = SOFTCAP * torch.tanh(logits / SOFTCAP)
    return F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1), ignore_index=-1)


def make_inputs(B=3, T=37, C=48, V=200, Vp=256, device="cpu", seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(B, T, C, generator=g)
    weight = torch.randn(Vp, C, generator=g) * 0.5  # large enough that the soft-cap bends the logits
    targets = torch.randint(0, V, (B, T), generator=g)
    targets[0, :7] = -1
    targets[2, -3:] = -1
    return x.to(device), weight.to(device), targets.to(device)


def loss_and_grads(fn, x, weight, targets, autocast_dtype=None):
    x = x.detach().clone().requires_grad_(True)
    weight = weight.detach().clone().requires_grad_(True)
    ctx = (
        torch.autocast(x.device.type, dtype=autocast_dtype)
        if autocast_dtype
        else torch.autocast(x.device.type, enabled=False)
    )
    with ctx:
        loss = fn(x, weight, targets)
    (loss * 0.25).backward()  # a non-unit incoming gradient, as loss / grad_accum_steps gives
    return loss.detach().float(), x.grad.float(), weight.grad.float()


def rel(a, b):
    return ((a - b).norm() / b.norm()).item()


@pytest.mark.parametrize("chunk_rows", [1, 16, 50, 10_000])
def test_fp32_matches_classic_head(chunk_rows):
    x, weight, targets = make_inputs()
    ref = loss_and_grads(lambda a, w, t: classic_loss(a, w, t, 200), x, weight, targets)
    ours = loss_and_grads(
        lambda a, w, t: softcap_cross_entropy(a, w, t, 200, SOFTCAP, chunk_rows=chunk_rows), x, weight, targets
    )
    assert abs(ours[0].item() - ref[0].item()) < 1e-5 * abs(ref[0].item())
    assert rel(ours[1], ref[1]) < 1e-5 and rel(ours[2], ref[2]) < 1e-5
    assert torch.count_nonzero(ours[2][200:]) == 0  # padding rows of the vocab get no gradient
    assert torch.count_nonzero(ours[1].view(-1, 48)[:7]) == 0  # ignored targets give no gradient to their rows


def test_bf16_autocast_matches_classic_head():
    x, weight, targets = make_inputs(seed=1)
    ref = loss_and_grads(lambda a, w, t: classic_loss(a, w, t, 200), x.bfloat16(), weight, targets, torch.bfloat16)
    ours = loss_and_grads(
        lambda a, w, t: softcap_cross_entropy(a, w, t, 200, SOFTCAP, chunk_rows=32),
        x.bfloat16(),
        weight,
        targets,
        torch.bfloat16,
    )
    assert abs(ours[0].item() - ref[0].item()) < 1e-3
    assert rel(ours[1], ref[1]) < 1e-2 and rel(ours[2], ref[2]) < 1e-2


def test_gpt_training_loss_equals_eval_loss_and_classic_gradients():
    from nanochat.gpt import GPT, GPTConfig

    torch.manual_seed(0)
    model = GPT(GPTConfig(sequence_len=64, vocab_size=300, n_layer=2, n_head=2, n_kv_head=2, n_embd=64))
    model.init_weights()
    model.chunked_loss = True  # on CPU it is off by default
    with torch.no_grad():
        for n, p in model.named_parameters():
            if "c_proj" in n:
                p.normal_(0, 0.05)
    idx = torch.randint(0, 300, (2, 40))
    targets = torch.randint(0, 300, (2, 40))
    targets[1, :9] = -1
    with torch.no_grad():
        eval_loss = model(idx, targets)  # the plain head (no grad)
    loss = model(idx, targets)  # the chunked head
    loss.backward()
    ours = {n: p.grad.clone() for n, p in model.named_parameters()}
    model.zero_grad(set_to_none=True)
    logits = model(idx)  # classic: full logits (soft-capped), then cross-entropy
    F.cross_entropy(logits.view(-1, 300), targets.view(-1), ignore_index=-1).backward()
    assert abs(loss.item() - eval_loss.item()) < 1e-5
    for n, p in model.named_parameters():
        assert rel(ours[n], p.grad) < 1e-4, n
    model.chunked_loss = None
    with torch.no_grad():
        plain = model(idx, targets)
    assert model(idx, targets).grad_fn.name() != "_SoftcapCrossEntropyBackward"  # CPU default: the plain head
    assert abs(plain.item() - eval_loss.item()) < 1e-6


def test_traced_by_torch_compile():
    # the trainer compiles the whole model on CUDA: the loss is a graph break there, the layers before it compiled
    x, weight, targets = make_inputs(seed=2)
    fn = torch.compile(
        lambda a, w, t: softcap_cross_entropy(a * 1.0, w, t, 200, SOFTCAP, chunk_rows=40), backend="aot_eager"
    )
    ours = loss_and_grads(fn, x, weight, targets)
    ref = loss_and_grads(lambda a, w, t: classic_loss(a, w, t, 200), x, weight, targets)
    assert abs(ours[0].item() - ref[0].item()) < 1e-5 * abs(ref[0].item())
    assert rel(ours[1], ref[1]) < 1e-5 and rel(ours[2], ref[2]) < 1e-5


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_compiled_bf16_matches_classic_head():
    x, weight, targets = make_inputs(B=4, T=512, C=256, V=8000, Vp=8064, device="cuda", seed=3)
    x = x.bfloat16()
    classic = torch.compile(lambda a, w, t: classic_loss(a, w, t, 8000))
    fused = torch.compile(lambda a, w, t: softcap_cross_entropy(a, w, t, 8000, SOFTCAP, chunk_rows=300))
    ref = loss_and_grads(classic, x, weight, targets, torch.bfloat16)
    ours = loss_and_grads(fused, x, weight, targets, torch.bfloat16)
    assert torch.isfinite(ours[0]) and abs(ours[0].item() - ref[0].item()) < 1e-3
    assert rel(ours[1], ref[1]) < 1e-2 and rel(ours[2], ref[2]) < 1e-2
