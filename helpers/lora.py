"""LoRA's shape facts: which projections it targets and how many parameters it adds.

A LoRA of rank ``r`` on a linear layer ``in → out`` adds ``A`` (r × in) and ``B`` (out × r):
``r·(in+out)`` parameters. ``lora_params`` sums that over a model's targeted layers, read from a
real ``torch`` model or from a ``Shape`` (Qwen3-4B's without loading it).

    >>> lora_params(QWEN3_4B, r=16)       # all 7 projections of 36 layers
    33030144
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

PROJECTIONS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


@dataclass(frozen=True)
class Shape:
    """The shapes of a Qwen3-style decoder that set speed and memory."""

    hidden: int
    intermediate: int
    layers: int
    heads: int
    kv_heads: int
    head_dim: int
    vocab: int
    tied: bool = True

    @classmethod
    def from_config(cls, config) -> "Shape":
        """From a ``transformers`` config (``Qwen3Config`` or similar)."""
        c = config.get_text_config() if hasattr(config, "get_text_config") else config
        head_dim = getattr(c, "head_dim", None) or c.hidden_size // c.num_attention_heads
        return cls(c.hidden_size, c.intermediate_size, c.num_hidden_layers, c.num_attention_heads,
                   c.num_key_value_heads, head_dim, c.vocab_size, bool(getattr(c, "tie_word_embeddings", True)))

    def projection_dims(self) -> dict[str, tuple[int, int]]:
        """(in, out) features of each of the 7 projections."""
        q, kv, h, i = self.heads * self.head_dim, self.kv_heads * self.head_dim, self.hidden, self.intermediate
        return {"q_proj": (h, q), "k_proj": (h, kv), "v_proj": (h, kv), "o_proj": (q, h),
                "gate_proj": (h, i), "up_proj": (h, i), "down_proj": (i, h)}


QWEN3_4B = Shape(hidden=2560, intermediate=9728, layers=36, heads=32, kv_heads=8, head_dim=128, vocab=151936)


def check_targets(targets: Iterable[str]) -> tuple[str, ...]:
    """``targets`` as a tuple; ``ValueError`` naming any that is not one of ``PROJECTIONS`` (or none)."""
    targets = tuple(targets)
    unknown = sorted(set(targets) - set(PROJECTIONS))
    if unknown or not targets:
        raise ValueError(f"unknown target modules {unknown or '(none chosen)'}; choose from {list(PROJECTIONS)}")
    return targets


def lora_params(model_or_shape, r: int, targets: Iterable[str] = PROJECTIONS) -> int:
    """Parameters a rank-``r`` LoRA on ``targets`` adds: ``r·(in+out)`` per targeted linear layer.

    ``model_or_shape`` is a ``torch`` model (its modules named ``*.q_proj`` … are counted) or a ``Shape``.
    """
    if isinstance(r, bool) or not isinstance(r, int) or r <= 0:
        raise ValueError(f"LoRA rank r must be a positive integer, got {r!r}")
    targets = check_targets(targets)
    if isinstance(model_or_shape, Shape):
        dims = model_or_shape.projection_dims()
        pairs = [dims[t] for t in targets] * model_or_shape.layers
    else:
        pairs = [(m.in_features, m.out_features) for name, m in model_or_shape.named_modules()
                 if name.rsplit(".", 1)[-1] in targets and hasattr(m, "in_features")]
    return sum(r * (i + o) for i, o in pairs)


def model_params(shape: Shape) -> int:
    """Parameters of a Qwen3-style decoder of ``shape`` (projections, RMSNorms, q/k norms, embedding)."""
    dims = shape.projection_dims().values()
    per_layer = sum(i * o for i, o in dims) + 2 * shape.hidden + 2 * shape.head_dim
    return shape.vocab * shape.hidden * (1 if shape.tied else 2) + shape.layers * per_layer + shape.hidden
