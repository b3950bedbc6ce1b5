"""One attention call per layer for a packed row: torch's flash varlen kernel on the GPU route.

A packed row holds several samples; the collator's ``position_ids`` restart at 0 at each one, and
attention must stay inside each sample. unsloth 2026.10.9 does that in one varlen call only when
torch's ``varlen_attn`` takes ``enable_gqa`` (torch ≥ 2.12). On torch 2.11 it falls back to one SDPA
call per run of equal-length samples (~28 per layer on the course mix). torch 2.11's flash kernel
takes grouped-query heads as they are, so ``install`` hands unsloth a varlen function that calls it
directly, K/V never copied. ``attention_route()`` says which route runs for packed rows, and why.

    cu, longest = cu_seqlens(torch.tensor([[0, 1, 2, 0, 1]]))   # tensor([0, 3, 5]), 3
"""
from __future__ import annotations

import warnings
from collections import Counter
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version

import torch

from .environment import training_path

# The private unsloth internals ``install`` replaces are those of this release (requirements-gpu.txt).
PINNED_UNSLOTH = "2026.10.9"
# torch whose varlen_attn lacks enable_gqa: the one the patch is for (2.12 and later need none)
PATCHED_TORCH = (2, 11)
CALLS: Counter = Counter()  # flash varlen calls made through this module (notebook 05 prints them)


@dataclass
class AttentionRoute:
    """Which attention kernel packed rows take, and why."""

    name: str  # "flash-varlen" | "torch-varlen" | "flash-attn" | "xformers" | "per-segment-sdpa" | "sdpa-block-mask"
    reason: str

    def __str__(self) -> str:
        return f"{self.name}: {self.reason}"


def cu_seqlens(position_ids: torch.Tensor) -> tuple[torch.Tensor, int]:
    """(int32 cumulative sample lengths, longest sample) of the packed rows in ``position_ids``.

    A sample starts wherever the position is 0; rows are laid end to end, as varlen kernels read them.

    >>> cu, longest = cu_seqlens(torch.tensor([[0, 1, 2, 0, 1], [0, 1, 2, 3, 0]]))
    >>> cu.tolist(), longest
    ([0, 3, 5, 9, 10], 4)
    """
    flat = position_ids.reshape(-1)
    starts = torch.nonzero(flat == 0).reshape(-1)
    if flat.numel() == 0 or starts.numel() == 0 or int(starts[0]) != 0:
        raise ValueError("position_ids must start each packed row with 0 (the collator's packed batches do)")
    cu = torch.cat([starts, starts.new_tensor([flat.numel()])]).to(torch.int32)
    return cu, int((cu[1:] - cu[:-1]).max())


class _FlashVarlen(torch.autograd.Function):
    """torch's flash forward and backward over cumulative lengths (self-attention: q and k share them)."""

    @staticmethod
    def forward(ctx, q, k, v, cu, longest, causal, scale, window):
        out, lse, seed, offset, _ = torch.ops.aten._flash_attention_forward(
            q, k, v, cu, cu, longest, longest, 0.0, causal, return_debug_mask=False, scale=scale, **window)
        ctx.save_for_backward(q, k, v, cu, out, lse, seed, offset)
        ctx.args = (longest, causal, scale, window)
        return out

    @staticmethod
    def backward(ctx, grad):
        q, k, v, cu, out, lse, seed, offset = ctx.saved_tensors
        longest, causal, scale, window = ctx.args
        dq, dk, dv = torch.ops.aten._flash_attention_backward(
            grad.contiguous(), q, k, v, out, lse, cu, cu, longest, longest, 0.0, causal, seed, offset,
            scale=scale, **window)
        return dq, dk, dv, None, None, None, None, None


def flash_kernel(q, k, v, cu, longest: int, causal: bool, scale: float | None, window: dict):
    """torch's flash varlen kernel (CUDA, fp16/bf16); (T, H, D) out for (T, H, D) q and (T, H_kv, D) k, v."""
    return _FlashVarlen.apply(q, k, v, cu, longest, causal, scale, window)


def varlen_attention(query, key, value, cu_seq_q, cu_seq_k, max_q: int, max_k: int, *, scale: float | None = None,
                     window_size=(-1, -1), enable_gqa: bool = False, kernel=flash_kernel):
    """torch ≥ 2.12's ``varlen_attn`` call on torch 2.11's flash kernel: every sample of a packed row in
    one call, (T, H, D) queries against (T, H_kv, D) keys and values handed over uncopied.

    ``window_size`` is (left, right): (-1, 0) causal, (-1, -1) bidirectional, (w, 0) a sliding window.
    ``kernel`` takes ``flash_kernel``'s arguments (the CPU tests pass a stand-in).
    """
    heads, kv_heads = query.shape[-2], key.shape[-2]
    if heads != kv_heads and not enable_gqa:
        raise ValueError(f"{heads} query heads against {kv_heads} key/value heads: pass enable_gqa=True")
    if heads % kv_heads:
        raise ValueError(f"{heads} query heads are not a multiple of {kv_heads} key/value heads")
    if cu_seq_q is not cu_seq_k and not torch.equal(cu_seq_q, cu_seq_k) or max_q != max_k:
        raise NotImplementedError("packed self-attention only: queries and keys share their cumulative lengths")
    left, right = window_size
    causal = right == 0
    # the kernel's own defaults cover plain causal and bidirectional; only a real window is spelled out
    window = {} if left < 0 else {"window_size_left": left, "window_size_right": right}
    CALLS["flash_varlen"] += 1
    return kernel(query, key, value, cu_seq_q, max_q, causal, scale, window)


def packed_attention(q, k, v, position_ids, *, scale: float | None = None, kernel=flash_kernel):
    """Causal attention over packed rows in one varlen call: (B, T, H, D) q, (B, T, H_kv, D) k and v,
    samples delimited by ``position_ids`` (B, T) as the collator writes them; returns (B, T, H, D)."""
    b, t = q.shape[:2]
    cu, longest = cu_seqlens(position_ids.to(q.device))
    out = varlen_attention(q.reshape(b * t, *q.shape[2:]), k.reshape(b * t, *k.shape[2:]),
                           v.reshape(b * t, *v.shape[2:]), cu, cu, longest, longest, scale=scale,
                           window_size=(-1, 0), enable_gqa=q.shape[2] != k.shape[2], kernel=kernel)
    return out.reshape(b, t, *out.shape[1:])


def version_problem() -> str | None:
    """Why the patch cannot apply to the installed unsloth and torch, or None where it applies or is not needed."""
    try:
        have = version("unsloth")
    except PackageNotFoundError:
        return None  # no unsloth: the bitsandbytes routes, which never take unsloth's attention
    torch_mm = tuple(int(x) for x in torch.__version__.split("+")[0].split(".")[:2])
    if torch_mm > PATCHED_TORCH:
        return None  # unsloth's own varlen route takes grouped-query heads there
    if have != PINNED_UNSLOTH or torch_mm != PATCHED_TORCH:
        return (f"helpers.packed_attention is written against unsloth {PINNED_UNSLOTH}'s private attention_dispatch on "
                f"torch {'.'.join(map(str, PATCHED_TORCH))} (requirements-gpu.txt), found unsloth {have} and "
                f"torch {torch.__version__}")
    return None


VERSION_PROBLEM = version_problem()
if VERSION_PROBLEM:
    warnings.warn(f"{VERSION_PROBLEM}; packed rows fall back to unsloth's per-segment SDPA (slower)", stacklevel=2)
_STATE: dict = {"problem": None}  # what install() found missing, for attention_route()


def _internals_missing(ad) -> str | None:
    names = ("_TORCH_VARLEN_ATTN", "_LEAN_VARLEN", "_torch_varlen_packed", "_varlen_attn_call", "_sdpa_packed_segments")
    missing = [n for n in names if not hasattr(ad, n)]
    if missing:
        return f"unsloth.utils.attention_dispatch has no {', '.join(missing)} (written for unsloth {PINNED_UNSLOTH})"
    if not torch.cuda.is_available() or torch.cuda.get_device_capability()[0] < 8:
        return "torch's flash kernel needs a CUDA GPU of compute capability 8.0 or newer"
    if not torch.backends.cuda.is_flash_attention_available():
        return "this torch build has no flash attention kernel"
    return None


def install() -> AttentionRoute:
    """Route unsloth's packed-row attention to ``varlen_attention`` where torch 2.11 lacks it; say which route runs.

    Where the pinned versions or the kernel are missing, one warning names what is missing and the
    per-segment fallback taken; nothing is patched.
    """
    from unsloth.utils import attention_dispatch as ad  # lazy: unsloth exists only on CUDA machines

    if ad._TORCH_VARLEN_ATTN is None and not ad.HAS_FLASH_ATTENTION:
        problem = VERSION_PROBLEM or _internals_missing(ad)
        if problem:
            if problem != _STATE["problem"]:
                warnings.warn(f"{problem}; packed rows fall back to unsloth's per-segment SDPA (slower)", stacklevel=2)
            _STATE["problem"] = problem
        else:
            ad._TORCH_VARLEN_ATTN = varlen_attention
            ad._LEAN_VARLEN = False  # its lean path calls the flash op itself; ours is the one kernel
    return attention_route("unsloth")


def attention_route(path: str | None = None) -> AttentionRoute:
    """Which attention packed rows take on training route ``path`` (default: this machine's), and why.

    >>> attention_route("bnb-cpu").name
    'sdpa-block-mask'
    """
    if path is None:
        path = training_path()[0]
    if path != "unsloth":
        return AttentionRoute("sdpa-block-mask", "transformers builds a block-diagonal causal mask from position_ids: "
                                                 "one SDPA call per layer over the whole (T × T) mask")
    from unsloth.utils import attention_dispatch as ad  # lazy: unsloth exists only on CUDA machines

    fn = ad._TORCH_VARLEN_ATTN
    if ad.HAS_FLASH_ATTENTION:
        return AttentionRoute("flash-attn", "the flash_attn package's varlen kernel, one call per layer")
    if fn is varlen_attention:
        return AttentionRoute("flash-varlen", f"torch {torch.__version__}'s flash varlen kernel through "
                              "helpers.packed_attention: one call per layer per packed row, grouped-query K/V uncopied")
    if fn is not None:
        return AttentionRoute("torch-varlen", "unsloth's own route to torch's varlen_attn (it takes enable_gqa)")
    if ad.select_attention_backend(use_varlen=True) == ad.XFORMERS:
        return AttentionRoute("xformers", "xformers' block-diagonal kernel, one call per layer")
    why = _STATE["problem"] or VERSION_PROBLEM or "helpers.packed_attention.install() has not run (train.tune_unsloth runs it)"
    return AttentionRoute("per-segment-sdpa", f"one SDPA call per run of equal-length samples: {why}")

