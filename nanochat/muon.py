"""
Muon: MomentUm Orthogonalized by Newton-Schulz (Keller Jordan), as in classic nanochat.
SGD-momentum (Nesterov), then each 2D update is replaced by the nearest (semi-)orthogonal matrix,
computed with a quintic Newton-Schulz iteration in bfloat16.
Under DDP the training scripts average gradients before step(), so this plain version is used on every rank.
"""

import torch


def _zeropower_via_newtonschulz5(G, steps):
    assert G.ndim >= 2
    a, b, c = (3.4445, -4.7750, 2.0315)
    X = G.bfloat16()
    if G.size(-2) > G.size(-1):
        X = X.mT
    X = X / (X.norm(dim=(-2, -1), keepdim=True) + 1e-7)  # spectral norm <= 1
    for _ in range(steps):
        A = X @ X.mT
        B = b * A + c * A @ A  # quintic computation strategy (@jxbz, @leloykun, @YouJiacheng)
        X = a * X + B @ X
    if G.size(-2) > G.size(-1):
        X = X.mT
    return X


_compiled = None


def zeropower_via_newtonschulz5(G, steps):
    # compiled on CUDA (many small kernels otherwise); eager on CPU, where compilation costs more than it saves
    global _compiled
    if G.device.type == "cuda":
        if _compiled is None:
            _compiled = torch.compile(_zeropower_via_newtonschulz5, dynamic=False)  # one graph per shape
        return _compiled(G, steps)
    return _zeropower_via_newtonschulz5(G, steps)


class Muon(torch.optim.Optimizer):
    """
    lr: learning rate (spectral norm units); momentum: 0.95 (scheduled by the scripts);
    nesterov: True; ns_steps: 5. Parameters are grouped by numel (classic: Python set order).
    Each update is scaled by max(1, rows/cols)^0.5.
    """

    def __init__(self, params, lr=0.02, momentum=0.95, nesterov=True, ns_steps=5):
        defaults = dict(lr=lr, momentum=momentum, nesterov=nesterov, ns_steps=ns_steps)
        params = list(params)
        assert all(p.ndim == 2 for p in params), "Muon only handles 2D parameters"
        param_groups = []
        for size in {p.numel() for p in params}:
            param_groups.append(dict(params=[p for p in params if p.numel() == size]))
        super().__init__(param_groups, defaults)

    @torch.no_grad()
    def step(self):
        # Per parameter the math is classic's; matrices of one shape are updated together: one multi-tensor kernel
        # per momentum update and one batched Newton-Schulz (bmm) instead of a dozen small kernels per matrix.
        for group in self.param_groups:
            by_shape = {}
            for p in group["params"]:
                if p.grad is not None:
                    by_shape.setdefault(p.shape, []).append(p)
            for shape, params in by_shape.items():
                grads = [p.grad for p in params]
                bufs = []
                for p in params:
                    state = self.state[p]
                    if "momentum_buffer" not in state:
                        state["momentum_buffer"] = torch.zeros_like(p.grad)
                    bufs.append(state["momentum_buffer"])
                torch._foreach_lerp_(bufs, grads, 1 - group["momentum"])
                if group["nesterov"]:
                    torch._foreach_lerp_(grads, bufs, group["momentum"])
                    updates = grads
                else:
                    updates = bufs
                X = zeropower_via_newtonschulz5(torch.stack(updates), steps=group["ns_steps"])
                X = X.to(params[0].dtype)  # bf16 -> the parameters' dtype, as p.add_(bf16) does
                torch._foreach_add_(
                    params, list(X.unbind(0)), alpha=-group["lr"] * max(1, shape[-2] / shape[-1]) ** 0.5
                )
