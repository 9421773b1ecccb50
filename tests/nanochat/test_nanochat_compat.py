"""
Compatibility with classic nanochat, checked against an INDEPENDENT reference implementation of the documented
math (shared/nanochat-architecture.md §1-3, §6), written here with plain torch ops (no nanochat.gpt import):
- a checkpoint written by the reference (classic file layout) loads through our loader and gives the same logits;
- a checkpoint written by our trainer code loads into the reference and gives the same logits;
- tokenizer.pkl / token_bytes.pt round trips, and the restricted unpickler refuses a hostile pickle.
"""

import json
import math
import os
import pickle
import subprocess
import sys
from collections import OrderedDict

import pytest
import torch
import torch.nn.functional as F

# -----------------------------------------------------------------------------
# the reference: documented math only


def ref_param_shapes(cfg):
    V, C, L, H, KV = cfg["vocab_size"], cfg["n_embd"], cfg["n_layer"], cfg["n_head"], cfg["n_kv_head"]
    Vp = 64 * math.ceil(V / 64)
    hd = C // H
    shapes = OrderedDict()
    shapes["transformer.wte.weight"] = (Vp, C)
    for i in range(L):
        p = f"transformer.h.{i}."
        shapes[p + "attn.c_q.weight"] = (H * hd, C)
        shapes[p + "attn.c_k.weight"] = (KV * hd, C)
        shapes[p + "attn.c_v.weight"] = (KV * hd, C)
        shapes[p + "attn.c_proj.weight"] = (C, C)
        shapes[p + "mlp.c_fc.weight"] = (4 * C, C)
        shapes[p + "mlp.c_proj.weight"] = (C, 4 * C)
    shapes["lm_head.weight"] = (Vp, C)
    return shapes


def ref_rmsnorm(x):
    xf = x.float()
    return (xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + 2.0**-23)).to(x.dtype)


def ref_forward(sd, cfg, idx):
    V, C, L, H, KV = cfg["vocab_size"], cfg["n_embd"], cfg["n_layer"], cfg["n_head"], cfg["n_kv_head"]
    hd = C // H
    B, T = idx.shape
    inv_freq = 1.0 / (10000 ** (torch.arange(0, hd, 2, dtype=torch.float32) / hd))
    theta = torch.outer(torch.arange(T, dtype=torch.float32), inv_freq)
    cos = theta.cos().bfloat16().float()[None, :, None, :]  # bf16-rounded tables
    sin = theta.sin().bfloat16().float()[None, :, None, :]

    def rotary(x):  # half-split pairs, rotation by -theta
        x1, x2 = x[..., : hd // 2], x[..., hd // 2 :]
        return torch.cat([x1 * cos + x2 * sin, -x1 * sin + x2 * cos], dim=-1)

    sd = {k: v.float() for k, v in sd.items()}
    x = ref_rmsnorm(sd["transformer.wte.weight"][idx])
    causal = torch.ones(T, T, dtype=torch.bool).tril()
    for i in range(L):
        p = f"transformer.h.{i}."
        h = ref_rmsnorm(x)
        q = (h @ sd[p + "attn.c_q.weight"].T).view(B, T, H, hd)
        k = (h @ sd[p + "attn.c_k.weight"].T).view(B, T, KV, hd)
        v = (h @ sd[p + "attn.c_v.weight"].T).view(B, T, KV, hd)
        q, k = ref_rmsnorm(rotary(q)), ref_rmsnorm(rotary(k))  # QK norm after rotary
        q, k, v = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)
        k = k.repeat_interleave(H // KV, dim=1)  # GQA: query head h uses kv head h // (H/KV)
        v = v.repeat_interleave(H // KV, dim=1)
        att = (q @ k.transpose(-1, -2)) / math.sqrt(hd)
        att = att.masked_fill(~causal, float("-inf")).softmax(-1)
        y = (att @ v).transpose(1, 2).reshape(B, T, C)
        x = x + y @ sd[p + "attn.c_proj.weight"].T
        h = ref_rmsnorm(x)
        x = x + F.relu(h @ sd[p + "mlp.c_fc.weight"].T).square() @ sd[p + "mlp.c_proj.weight"].T
    x = ref_rmsnorm(x)
    logits = (x @ sd["lm_head.weight"].T)[..., :V].float()
    return 15 * torch.tanh(logits / 15)


CFG = {
    "sequence_len": 64,
    "vocab_size": 1000,
    "n_layer": 2,
    "n_head": 4,
    "n_kv_head": 2,
    "n_embd": 128,
}  # padded vocab, GQA


def ref_random_state_dict(cfg, seed=0, wte_dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    sd = OrderedDict()
    for name, shape in ref_param_shapes(cfg).items():
        std = 1.0 if "wte" in name else (0.02 if "lm_head" in name else shape[1] ** -0.5)
        sd[name] = torch.randn(shape, generator=g) * std
    sd["transformer.wte.weight"] = sd["transformer.wte.weight"].to(wte_dtype)
    return sd


def write_tokenizer(base_dir, vocab_size):
    from nanochat.tokenizer import compute_token_bytes, synthetic_tokenizer

    tok = synthetic_tokenizer(vocab_size)
    tok.save(os.path.join(base_dir, "tokenizer"))
    torch.save(compute_token_bytes(tok), os.path.join(base_dir, "tokenizer", "token_bytes.pt"))
    return tok


def write_classic_checkpoint(ckpt_dir, step, sd, cfg):
    """What classic nanochat writes: torch.save(state_dict) + json meta (indent 2)."""
    os.makedirs(ckpt_dir, exist_ok=True)
    torch.save(sd, os.path.join(ckpt_dir, f"model_{step:06d}.pt"))
    with open(os.path.join(ckpt_dir, f"meta_{step:06d}.json"), "w") as f:
        json.dump(
            {"step": step, "val_loss": 1.0, "mmlu_acc": 0.0, "arc_easy_acc": 0.0, "model_config": cfg}, f, indent=2
        )


# -----------------------------------------------------------------------------


@pytest.mark.parametrize("wte_dtype", [torch.float32, torch.bfloat16])  # bf16: a CUDA-made checkpoint
def test_reference_checkpoint_loads_and_matches(tmp_path, monkeypatch, wte_dtype):
    monkeypatch.setenv("NANOCHAT_BASE_DIR", str(tmp_path))
    write_tokenizer(tmp_path, CFG["vocab_size"])
    sd = ref_random_state_dict(CFG, wte_dtype=wte_dtype)
    # prefix from a compiled wrapper must be stripped by the loader
    write_classic_checkpoint(
        tmp_path / "chatsft_checkpoints" / "d2", 123, OrderedDict(("_orig_mod." + k, v) for k, v in sd.items()), CFG
    )
    from nanochat.checkpoint import load_model

    model, tokenizer, meta = load_model("sft", torch.device("cpu"), phase="eval")
    assert meta["step"] == 123
    assert all(p.dtype == torch.float32 for p in model.parameters()), "bf16 must become fp32 on CPU"
    idx = torch.randint(0, CFG["vocab_size"], (2, 48), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        ours = model(idx)
    ref = ref_forward(sd, CFG, idx)
    assert ours.shape == (2, 48, CFG["vocab_size"])
    assert torch.allclose(ours, ref, atol=1e-5, rtol=0), f"max diff {(ours - ref).abs().max().item()}"


def test_our_checkpoint_loads_into_reference(tmp_path):
    from nanochat.checkpoint import save_checkpoint
    from nanochat.gpt import GPT, GPTConfig

    torch.manual_seed(0)
    model = GPT(GPTConfig(**CFG))
    model.init_weights()
    with torch.no_grad():  # c_proj are zero at init: randomize so every weight matters
        for n, p in model.named_parameters():
            if "c_proj" in n:
                p.normal_(0, 0.05)
    save_checkpoint(str(tmp_path), 7, model.state_dict(), None, {"step": 7, "model_config": CFG})
    sd = torch.load(tmp_path / "model_000007.pt", weights_only=True)
    expected = ref_param_shapes(CFG)
    assert list(sd.keys()) == list(expected.keys()), "names and order must be the classic ones"
    assert all(tuple(sd[k].shape) == expected[k] for k in expected)
    assert json.load(open(tmp_path / "meta_000007.json"))["model_config"] == CFG
    idx = torch.randint(0, CFG["vocab_size"], (2, 40))
    with torch.no_grad():
        ours = model(idx)
    ref = ref_forward(sd, CFG, idx)
    assert torch.allclose(ours, ref, atol=1e-5, rtol=0), f"max diff {(ours - ref).abs().max().item()}"
    # loss = cross entropy of the soft-capped logits, ignore_index -1
    targets = idx.clone()
    targets[0, :5] = -1
    with torch.no_grad():
        loss = model(idx, targets)
    ref_loss = F.cross_entropy(ref.view(-1, CFG["vocab_size"]), targets.view(-1), ignore_index=-1)
    assert abs(loss.item() - ref_loss.item()) < 1e-5


def test_documented_param_count_and_flops():
    from nanochat.gpt import GPT, GPTConfig

    cfg = dict(sequence_len=256, vocab_size=2048, n_layer=2, n_head=1, n_kv_head=1, n_embd=128)  # the §2.6 checkpoint
    with torch.device("meta"):
        model = GPT(GPTConfig(**cfg))
    assert sum(p.numel() for p in model.parameters()) == 917_504
    assert model.estimate_flops() == 4_718_592
    assert tuple(model.cos.shape) == (1, 2560, 1, 64)
    cfg20 = dict(sequence_len=2048, vocab_size=65536, n_layer=20, n_head=10, n_kv_head=10, n_embd=1280)
    with torch.device("meta"):
        model = GPT(GPTConfig(**cfg20))
    assert sum(p.numel() for p in model.parameters()) == 560_988_160


def test_kv_cache_decoding_matches_full_forward():
    from nanochat.engine import KVCache
    from nanochat.gpt import GPT, GPTConfig

    torch.manual_seed(0)
    model = GPT(GPTConfig(**CFG))
    model.init_weights()
    with torch.no_grad():
        for n, p in model.named_parameters():
            if "c_proj" in n:
                p.normal_(0, 0.05)
    idx = torch.randint(0, CFG["vocab_size"], (1, 30))
    with torch.no_grad():
        full = model(idx)
        cache = KVCache(
            batch_size=1, num_heads=CFG["n_kv_head"], seq_len=8, head_dim=32, num_layers=CFG["n_layer"]
        )  # forces growth
        parts = [model(idx[:, :10], kv_cache=cache)]  # prefill
        parts += [model(idx[:, t : t + 1], kv_cache=cache) for t in range(10, 20)]  # single tokens
        parts.append(model(idx[:, 20:], kv_cache=cache))  # a chunk
    assert torch.allclose(torch.cat(parts, dim=1), full, atol=5e-5), "KV-cache decoding must match the full forward"


# -----------------------------------------------------------------------------
# tokenizer


def test_tokenizer_train_save_load_round_trip(tmp_path):
    from nanochat.dataset import demo_documents
    from nanochat.tokenizer import (
        SPECIAL_TOKENS,
        SPLIT_PATTERN,
        RustBPETokenizer,
        compute_token_bytes,
        load_tokenizer_pkl,
    )

    docs = demo_documents()[:400]
    tok = RustBPETokenizer.train_from_iterator(iter(docs), 512)
    tok.save(str(tmp_path))
    enc = load_tokenizer_pkl(tmp_path / "tokenizer.pkl")
    assert type(enc).__module__ == "tiktoken.core" and enc.name == "rustbpe"
    assert enc.n_vocab == 512 and enc._pat_str == SPLIT_PATTERN
    assert [enc.encode_single_token(s) for s in SPECIAL_TOKENS] == list(range(503, 512)), (
        "9 specials, in order, after the merges"
    )
    assert all(enc.encode_single_token(bytes([i])) == i for i in range(256)), "ids 0-255 are the single bytes"
    text = "def f(x):\n    return x ** 2  # 12345 <|bos|>"
    assert enc.decode(enc.encode_ordinary(text)) == text
    assert tok.encode("<|bos|>") != [tok.get_bos_token_id()], "special strings in text are ordinary text"
    with open(tmp_path / "tokenizer.pkl", "rb") as f:
        classic = pickle.load(f)  # what classic nanochat does: same encoding
    assert classic.encode_ordinary(text) == enc.encode_ordinary(text)
    tb = compute_token_bytes(tok)
    assert tb.dtype == torch.int32 and tb.shape == (512,)
    assert tb[:128].eq(1).all() and tb[128:256].eq(3).all() and tb[503:].eq(0).all()


class _Payload:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_restricted_unpickler_refuses_hostile_pickle(tmp_path):
    from nanochat.tokenizer import load_tokenizer_pkl

    marker = tmp_path / "PWNED"
    evil = tmp_path / "tokenizer.pkl"
    evil.write_bytes(pickle.dumps(_Payload(marker)))
    with pytest.raises(ValueError, match="refusing"):
        load_tokenizer_pkl(evil)
    assert not marker.exists(), "the payload must never run"
    # other non-Encoding content and garbage are refused with ValueError too
    (tmp_path / "dict.pkl").write_bytes(pickle.dumps({"a": 1}))
    with pytest.raises(ValueError):
        load_tokenizer_pkl(tmp_path / "dict.pkl")
    (tmp_path / "junk.pkl").write_bytes(b"\x80\x04garbage")
    with pytest.raises(ValueError):
        load_tokenizer_pkl(tmp_path / "junk.pkl")
    assert not marker.exists()


def test_render_conversation_masks():
    from nanochat.tokenizer import synthetic_tokenizer

    tok = synthetic_tokenizer(1024)
    conv = {
        "messages": [
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": "2+2?"},
            {
                "role": "assistant",
                "content": [
                    {"type": "python", "text": "2+2"},
                    {"type": "python_output", "text": "4"},
                    {"type": "text", "text": "4"},
                ],
            },
        ]
    }
    ids, mask = tok.render_conversation(conv)
    sp = tok.encode_special
    assert ids[0] == tok.get_bos_token_id() and mask[0] == 0
    assert ids[1] == sp("<|user_start|>") and tok.decode(ids[2 : ids.index(sp("<|user_end|>"))]) == "be brief\n\n2+2?"
    i = ids.index(sp("<|python_start|>"))
    assert mask[i] == 1 and mask[ids.index(sp("<|output_start|>"))] == 0 and mask[ids.index(sp("<|output_end|>"))] == 0
    assert ids[-1] == sp("<|assistant_end|>") and mask[-1] == 1


def test_calculator_tool_is_restricted():
    from nanochat.engine import use_calculator

    assert use_calculator("12+30") == 42 and use_calculator("1,000*3") == 3000
    assert use_calculator("'strawberry'.count('r')") == 3
    for bad in ["__import__('os').system('true')", "2**1000000", "open('x')", "[].__class__", "exec('1')"]:
        assert use_calculator(bad) is None, bad


def test_engine_forces_tool_output(monkeypatch):
    """After <|python_end|>, the tool's result is force-fed as <|output_start|> result <|output_end|> (mask 0)."""
    from nanochat.engine import Engine
    from nanochat.tokenizer import synthetic_tokenizer

    tok = synthetic_tokenizer(1024)
    script = [tok.encode_special("<|python_start|>")] + tok.encode("6*7") + [tok.encode_special("<|python_end|>")]
    end = tok.encode_special("<|assistant_end|>")
    next_of = {tok.get_bos_token_id(): script[0], **{a: b for a, b in zip(script, script[1:], strict=False)}}

    class Scripted:  # a stand-in model: the next token is a function of the last input token
        config = type("C", (), {"n_kv_head": 1, "n_embd": 8, "n_head": 1, "n_layer": 1, "sequence_len": 64})()

        def get_device(self):
            return torch.device("cpu")

        def forward(self, ids, kv_cache=None):
            B, T = ids.shape
            kv_cache.insert_kv(0, torch.zeros(B, 1, T, 8), torch.zeros(B, 1, T, 8))
            logits = torch.full((B, T, 1024), -1e9)
            for r in range(B):
                logits[r, -1, next_of.get(ids[r, -1].item(), end)] = 0.0
            return logits

    engine = Engine(Scripted(), tok)
    out, masks = [], []
    for col, m in engine.generate([tok.get_bos_token_id()], max_tokens=30, temperature=0.0):
        out.append(col[0])
        masks.append(m[0])
    text = tok.decode(out)
    assert "<|output_start|>42<|output_end|>" in text, text
    i = out.index(tok.encode_special("<|output_start|>"))
    assert masks[i] == 0 and masks[0] == 1


def test_the_kernels_are_the_default_and_stay_off_on_cpu():
    # measured in training on an H200 (nanochat/LOG.md), the kernels are the default; CPUs keep the torch code
    env = {k: v for k, v in os.environ.items() if k != "NANOCHAT_ROPE_KERNEL"}
    code = (
        "import torch; from nanochat import gpt; print(gpt.ROPE_KERNEL, gpt._rope_kernel(torch.zeros(1, 4, 2, 8), 8))"
    )
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.split() == ["fused", "None"], out.stdout + out.stderr


def test_the_quack_mlp_leaves_cpu_runs_unchanged():
    # quack's kernels (Hopper + quack-kernels; auto, the default, takes them where they run) leave CPU runs unchanged
    code = (
        "import torch; from nanochat import gpt; torch.manual_seed(0)\n"
        "m = gpt.MLP(gpt.GPTConfig(n_embd=16)); x = torch.randn(2, 3, 16)\n"
        "ref = m.c_proj(torch.relu(m.c_fc(x)).square())\n"
        "print(gpt.MLP_KERNEL, gpt._QUACK_MLP, gpt._QUACK_EPILOGUE, torch.equal(m(x), ref))"
    )
    for value, kernel in ((None, "auto"), ("quack", "quack"), ("quack-epilogue", "quack-epilogue")):
        env = {k: v for k, v in os.environ.items() if k != "NANOCHAT_MLP_KERNEL"}
        if value:
            env["NANOCHAT_MLP_KERNEL"] = value
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
        assert out.returncode == 0 and out.stdout.split() == [kernel, "None", "False", "True"], out.stdout + out.stderr
