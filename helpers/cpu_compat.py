"""Two fixes that make the pinned stack train correctly on a CPU.

1. bitsandbytes ``Linear4bit`` on CPUs with avx512_bf16 repacks its weight in place on
   the first no-grad forward (an eval step), after which gradients are silently wrong.
   ``guard_avx512_bf16`` switches that off on every module (unsloth_zoo does the same).
2. TRL 1.15's ``SFTTrainer`` always computes the loss through a fused LM head whose
   kernel is written in Triton: CPU builds of PyTorch lack Triton, and its kernels run on
   GPUs only. ``install_torch_logprob`` routes CPU tensors to a plain-PyTorch function
   with the same contract; GPU tensors still take TRL's kernel.
"""
from __future__ import annotations

import torch

CHUNK_BYTES = 24 << 20  # float32 logits per token chunk (~41 tokens of Qwen3's vocabulary); under glibc's
# 32 MiB mmap ceiling, so the buffers are reused instead of freshly page-faulted every chunk


def guard_avx512_bf16(model: torch.nn.Module) -> int:
    """Set ``support_avx512bf16_for_cpu = False`` on every module that has it; return how many."""
    n = 0
    for module in model.modules():
        if hasattr(module, "support_avx512bf16_for_cpu"):
            module.support_avx512bf16_for_cpu = False
            n += 1
    return n


class TorchLogProb(torch.autograd.Function):
    """Plain-PyTorch stand-in for ``trl.kernels.ChunkedLogProbFunction`` (same ``apply`` contract).

    Per-token log-probabilities of ``hidden @ weight.T`` in token chunks, never holding all the
    logits. Like TRL's kernel it keeps only per-token statistics: the forward also stores the
    direction of each token's hidden-state gradient, ``scale·(w[target] − p @ w)``, so the
    backward is one multiply; a trainable LM head (rare in QLoRA) is recomputed chunk by chunk.
    Entropy and top-1 feed TRL's logged metrics only and carry no gradient.

    >>> h, w, t = torch.randn(5, 8), torch.randn(100, 8), torch.randint(0, 100, (5,))
    >>> lp = TorchLogProb.apply(h, w, None, t, 1.0, 0)[0]
    >>> torch.allclose(lp, torch.log_softmax(h @ w.T, -1)[range(5), t], atol=1e-5)
    True
    """

    @staticmethod
    def forward(ctx, hidden, weight, bias, targets, temperature, chunk_size, final_logit_softcapping=None,
                logit_scale=1.0, outputs=("log_probs",)):
        del chunk_size  # the Triton kernel's vocabulary tile; not needed here
        if final_logit_softcapping is not None:
            raise NotImplementedError("the CPU log-prob stand-in has no logit soft-capping (Gemma-2 style); "
                                      "train this model on a GPU, where TRL's kernel handles it")
        ctx.set_materialize_grads(False)
        dtype = torch.get_autocast_dtype("cpu") if torch.is_autocast_enabled("cpu") else hidden.dtype
        scale, n = logit_scale / temperature, hidden.shape[0]
        w = weight.to(dtype)
        logps = torch.empty(n, dtype=torch.float32)
        ents = torch.empty(n, dtype=torch.float32) if "entropy" in outputs else None
        tops = torch.empty(n, dtype=torch.bool) if "is_top1" in outputs else None
        grad_dir = torch.empty(hidden.shape, dtype=torch.float32) if ctx.needs_input_grad[0] else None
        step = max(1, CHUNK_BYTES // (4 * weight.shape[0]))
        for s in range(0, n, step):
            t = targets[s:s + step, None]
            z = _logits(hidden[s:s + step].to(dtype), w, bias, scale)
            z_t, z_max = z.gather(-1, t), z.amax(-1, keepdim=True)
            z.sub_(z_max)
            e = z.exp()
            sum_e = e.sum(-1, keepdim=True)
            log_sum = sum_e.log()
            logps[s:s + step] = (z_t - z_max - log_sum).squeeze(-1)
            if ents is not None:  # −Σ p·log p = log Σe − Σ e·z / Σe, with z shifted by its max
                ents[s:s + step] = (log_sum - z.mul_(e).sum(-1, keepdim=True) / sum_e).squeeze(-1)
            if tops is not None:
                tops[s:s + step] = (z_t >= z_max).squeeze(-1)
            if grad_dir is not None:  # d log p_t / d hidden = scale · (w[t] − p @ w)
                grad_dir[s:s + step] = scale * (w[t.squeeze(-1)].float() - (e.to(dtype) @ w).float() / sum_e)
        ctx.save_for_backward(hidden, weight, bias, targets, grad_dir)
        ctx.dtype, ctx.scale, ctx.step = dtype, scale, step
        ctx.mark_non_differentiable(*(x for x in (ents, tops) if x is not None))
        return logps, ents, None, None, tops

    @staticmethod
    def backward(ctx, grad_logps, *_):
        hidden, weight, bias, targets, grad_dir = ctx.saved_tensors
        if grad_logps is None:
            return (None,) * 9
        g = grad_logps.float()[:, None]
        grad_hidden = (g * grad_dir).to(hidden.dtype) if grad_dir is not None else None
        grad_weight = grad_bias = None
        if ctx.needs_input_grad[1] or (bias is not None and ctx.needs_input_grad[2]):
            w = weight.to(ctx.dtype)
            grad_weight = torch.zeros(weight.shape, dtype=torch.float32)
            grad_bias = torch.zeros(bias.shape, dtype=torch.float32) if bias is not None else None
            for s in range(0, hidden.shape[0], ctx.step):
                h, t, gs = hidden[s:s + ctx.step].to(ctx.dtype), targets[s:s + ctx.step, None], g[s:s + ctx.step]
                dz = torch.softmax(_logits(h, w, bias, ctx.scale), -1).mul_(-gs)  # d(g·log p_t)/dz = g·(onehot − p)
                dz.scatter_add_(-1, t, gs)
                grad_weight += ctx.scale * (dz.t() @ h.float())
                if grad_bias is not None:
                    grad_bias += ctx.scale * dz.sum(0)
            grad_weight = grad_weight.to(weight.dtype) if ctx.needs_input_grad[1] else None
            grad_bias = grad_bias.to(bias.dtype) if grad_bias is not None and ctx.needs_input_grad[2] else None
        return grad_hidden, grad_weight, grad_bias, None, None, None, None, None, None


def _logits(hidden: torch.Tensor, w: torch.Tensor, bias, scale: float) -> torch.Tensor:
    """``scale · (hidden @ w.T + bias)`` in float32; each skipped no-op saves a pass over the vocabulary."""
    z = (hidden @ w.t()).float()
    if bias is not None:
        z += bias.float()
    if scale != 1.0:
        z *= scale
    return z


class _ByDevice:
    """Triton kernel for GPU tensors (when TRL has it), ``TorchLogProb`` for CPU tensors."""

    def __init__(self, triton_fn):
        self.triton_fn = triton_fn

    def apply(self, hidden, *args):
        if hidden.device.type != "cpu" and self.triton_fn is not None:
            return self.triton_fn.apply(hidden, *args)
        return TorchLogProb.apply(hidden, *args)


def install_torch_logprob() -> bool:
    """Route TRL's fused LM head through ``TorchLogProb`` for CPU tensors; True if newly installed.

    Needed with or without Triton installed: its kernels run on GPUs only.
    """
    from trl.trainer import utils as trl_utils

    current = getattr(trl_utils, "_ChunkedLogProbFunction", None)
    if isinstance(current, _ByDevice):
        return False
    trl_utils._ChunkedLogProbFunction = _ByDevice(current)
    return True
