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

CHUNK_BYTES = 24 << 20  # logits per chunk; below glibc's mmap threshold, so memory is reused, not re-faulted


def guard_avx512_bf16(model: torch.nn.Module) -> int:
    """Set ``support_avx512bf16_for_cpu = False`` on every module that has it; return how many."""
    n = 0
    for module in model.modules():
        if hasattr(module, "support_avx512bf16_for_cpu"):
            module.support_avx512bf16_for_cpu = False
            n += 1
    return n


class TorchLogProb:
    """Plain-PyTorch stand-in for ``trl.kernels.ChunkedLogProbFunction`` (same ``apply`` contract).

    Per-token log-probabilities of ``hidden @ weight.T``, computed in token chunks of about
    ``CHUNK_BYTES`` of logits (much faster on CPU than one huge tensor). Entropy and top-1
    feed TRL's logged metrics only, so they are computed without gradient.
    """

    @staticmethod
    def apply(hidden, weight, bias, targets, temperature, chunk_size, final_logit_softcapping=None,
              logit_scale=1.0, outputs=("log_probs",)):
        del chunk_size  # the Triton kernel's vocabulary tile; not needed here
        want_ent, want_top = "entropy" in outputs, "is_top1" in outputs
        dtype = torch.get_autocast_dtype("cpu") if torch.is_autocast_enabled("cpu") else hidden.dtype
        w = weight.to(dtype)
        step = max(1, CHUNK_BYTES // (4 * weight.shape[0]))
        logps, ents, tops = [], [], []
        for s in range(0, hidden.shape[0], step):
            z = (hidden[s:s + step].to(dtype) @ w.t()).float()
            if bias is not None:
                z = z + bias.float()
            if logit_scale != 1.0:  # each skipped no-op saves a pass over 151,936 logits per token
                z = z * logit_scale
            if final_logit_softcapping is not None:
                z = final_logit_softcapping * torch.tanh(z / final_logit_softcapping)
            logp = torch.log_softmax(z if temperature == 1.0 else z / temperature, dim=-1)
            t = targets[s:s + step, None]
            logps.append(logp.gather(-1, t).squeeze(-1))
            with torch.no_grad():
                if want_ent:  # -Σ p·log p as a batched dot product: no p·log p tensor written
                    ents.append(-torch.bmm(logp.exp().unsqueeze(1), logp.unsqueeze(2)).view(-1))
                if want_top:
                    tops.append(logp.argmax(-1) == t.squeeze(-1))
        if not logps:  # an all-masked micro-batch: an empty result still connected to the graph
            logps = [(hidden.sum() * 0).float().reshape(1)[:0]]
            ents, tops = [hidden.new_zeros(0, dtype=torch.float32)], [targets.new_zeros(0, dtype=torch.bool)]
        return (torch.cat(logps), torch.cat(ents) if want_ent else None, None, None,
                torch.cat(tops) if want_top else None)


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
