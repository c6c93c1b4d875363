"""LM head + cross-entropy in row chunks, without ever holding the full (N, V) fp32 logits.

The forward pass computes, chunk by chunk, the loss and its gradients with respect to the hidden
states and the head weight (softmax - one_hot), the way fused linear-cross-entropy kernels do
(Liger, Apple's cut-cross-entropy); backward only scales them. Peak extra memory is
O(chunk * V) instead of O(N * V) for logits, their fp32 copy and the softmax saved for backward.
"""

from __future__ import annotations

import torch


def _chunk_loss(h: torch.Tensor, weight: torch.Tensor, y: torch.Tensor, ignore_index: int,
                with_grad: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
    acc = torch.promote_types(h.dtype, torch.float32)  # fp32 at least, fp64 stays fp64
    logits = (h @ weight.t()).to(acc)  # (n, V) one chunk only
    valid = y != ignore_index  # (n,)
    lse = logits.logsumexp(dim=-1)  # (n,)
    target = logits.gather(1, torch.where(valid, y, 0)[:, None]).squeeze(1)  # (n,)
    loss = ((lse - target) * valid).sum()
    if not with_grad:
        return loss, None
    g = logits.sub_(lse[:, None]).exp_()  # softmax in place: d(sum loss)/d(logits) = softmax - one_hot
    rows = valid.nonzero().squeeze(1)
    g[rows, y[rows]] -= 1.0
    g.mul_(valid[:, None])  # ignored rows contribute nothing
    return loss, g


class _ChunkedLinearCE(torch.autograd.Function):
    @staticmethod
    def forward(ctx, hidden, weight, targets, ignore_index: int, chunk: int):
        n_valid = (targets != ignore_index).sum().clamp(min=1)
        acc = torch.promote_types(hidden.dtype, torch.float32)
        total = torch.zeros((), device=hidden.device, dtype=acc)
        grad_h = torch.empty_like(hidden)
        grad_w = torch.zeros(weight.shape, device=weight.device, dtype=acc)
        for s in range(0, hidden.shape[0], chunk):
            h, y = hidden[s : s + chunk], targets[s : s + chunk]
            loss, g = _chunk_loss(h, weight, y, ignore_index, with_grad=True)  # g (n, V) in acc
            total += loss
            grad_h[s : s + chunk] = (g.to(weight.dtype) @ weight).to(hidden.dtype)  # (n, C)
            grad_w += g.t() @ h.to(acc)  # (V, C)
        ctx.save_for_backward(grad_h, grad_w.to(weight.dtype), n_valid)
        return total / n_valid

    @staticmethod
    def backward(ctx, grad_out):
        grad_h, grad_w, n_valid = ctx.saved_tensors
        scale = grad_out / n_valid
        return grad_h * scale.to(grad_h.dtype), grad_w * scale.to(grad_w.dtype), None, None, None


def chunked_cross_entropy(hidden: torch.Tensor, head_weight: torch.Tensor, targets: torch.Tensor,
                          ignore_index: int = -100, chunk: int = 1024) -> torch.Tensor:
    """Mean cross-entropy of `hidden @ head_weight.T` against `targets`, over non-ignored rows.

    hidden (B, T, C) or (N, C); head_weight (V, C) (e.g. `Decoder.head_weight`); targets (B, T) or
    (N,) already shifted (targets[t] = input_ids[t+1]). Matches F.cross_entropy on full logits.
    """
    C = hidden.shape[-1]
    hidden, targets = hidden.reshape(-1, C), targets.reshape(-1)  # (N, C), (N,)
    if hidden.shape[0] != targets.shape[0]:
        raise ValueError(f"chunked_cross_entropy: {hidden.shape[0]} hidden rows but {targets.shape[0]} targets")
    if torch.is_grad_enabled() and (hidden.requires_grad or head_weight.requires_grad):
        return _ChunkedLinearCE.apply(hidden, head_weight, targets, ignore_index, chunk)
    total = sum(_chunk_loss(hidden[s : s + chunk], head_weight, targets[s : s + chunk], ignore_index, False)[0]
                for s in range(0, hidden.shape[0], chunk))
    return total / (targets != ignore_index).sum().clamp(min=1)
