"""Two changes to unsloth 2026.10.9's fused LoRA MLP that the course's GPU route makes.

``fused_mlp_eager`` runs the in-place fused MLP outside unsloth's per-block ``torch.compile``
(less memory at the same speed); ``fused_mlp_out_of_place`` makes the tiled MLP's backward
work. Both reach into unsloth internals, check that they are there, and name the pinned
version when they are not (``requirements-gpu.txt`` pins it).
"""
from __future__ import annotations

import inspect

import torch


def fused_mlp_eager() -> None:
    """Run unsloth's fused LoRA MLP outside its per-block ``torch.compile`` when the call is in place
    (every call but the tiled MLP's); unsloth itself runs it eagerly before torch 2.11.

    Traced, the SwiGLU backward writes h, df and de into three new (tokens × intermediate) tensors
    while DW, e and g stay alive as graph inputs; eager, its Triton kernel overwrites DW, e and g
    in place: three such tensors fewer at the step's peak, at the same speed (``bench/README.md``,
    mlp_ab). The tiled MLP's out-of-place tiles stay traced, where they run faster.
    """
    from unsloth.kernels import fast_lora  # lazy: unsloth exists only on CUDA machines

    if getattr(fast_lora._apply, "course_mlp_eager", False):
        return
    traced = fast_lora._apply
    eager = torch.compiler.disable(lambda function, *args: function.apply(*args))
    params = list(inspect.signature(fast_lora.LoRA_MLP.forward).parameters)
    if "inplace" not in params:
        raise ValueError("unsloth's LoRA_MLP.forward has no 'inplace' argument; helpers.unsloth_patches' eager-MLP "
                         "dispatch is written for unsloth 2026.10.9 (requirements-gpu.txt pins it)")
    at = params.index("inplace") - 1  # its place among apply's arguments (forward's first is ctx)

    def _apply(function, *args):
        if function is fast_lora.LoRA_MLP and (args[at] if len(args) > at else True) is True:  # default True
            return eager(function, *args)
        return traced(function, *args)

    _apply.course_mlp_eager, _apply.traced = True, traced  # traced: unsloth's own, for bench/mlp_ab_bench.py
    fast_lora._apply = _apply


def fused_mlp_out_of_place(model) -> None:
    """Make unsloth's fused LoRA MLP return dX in a new tensor, as unsloth does for Cohere.

    In place (its default) the backward writes dX into the MLP's input; under the tiled MLP
    that input is one tile of a tensor split in no-grad mode, so the next tile's backward
    fails with "a view created in no_grad mode … modified inplace" (unsloth 2026.10.9).
    """
    from unsloth.kernels.fast_lora import apply_lora_mlp_swiglu  # lazy: CUDA machines only

    if model.config.model_type != "qwen3":  # the kernel below is SwiGLU's, the MLP of Qwen3
        raise NotImplementedError(f"tiled_mlp is wired for Qwen3's SwiGLU MLP, not {model.config.model_type!r}")

    def forward(self, X):  # a function, not functools.partial: the tiled MLP binds it with __get__
        return apply_lora_mlp_swiglu(self, X, inplace=False)

    mlps = [m for name, m in model.named_modules() if name.endswith(".mlp") and hasattr(m, "_unsloth_forward")]
    if not mlps:
        raise RuntimeError("tiled_mlp: unsloth did not tile any MLP (no module has _unsloth_forward)")
    for mlp in mlps:
        mlp._unsloth_forward = forward
