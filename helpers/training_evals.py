"""The day's metrics measured during training (notebook 05): curves beside the loss.

    trainer.add_callback(EvalEvery(tok, rows, every=20))   # rows: a few validation rows
    trainer.train()
    pd.DataFrame(trainer.callback_handler.callbacks[-1].history)

Every ``every`` steps (and before the first) the adapter is scored on the same rows with
``helpers.evaluate``: perplexity, usable, json_valid, json_keys, exact_match. A falling
loss with flat metrics, or metrics that peak and fall, is what the curves are for.
"""
from __future__ import annotations

from transformers import TrainerCallback

from . import evaluate

TRACKED = ("perplexity", "usable", "json_valid", "json_keys", "exact_match")


class EvalEvery(TrainerCallback):
    """Score ``rows`` with the adapter every ``every`` optimizer steps; ``history`` holds one dict a step."""

    def __init__(self, tok, rows: list[dict], every: int, max_new_tokens: int = 48,
                 tracked: dict[str, tuple[str, str]] | None = None):
        """``tracked`` maps a history column to the (bucket, metric) it records; default: ``TRACKED`` in ``all``."""
        if every <= 0:
            raise ValueError(f"every must be a positive number of steps, got {every}")
        self.tok, self.rows, self.every, self.max_new_tokens = tok, list(rows), every, max_new_tokens
        self.tracked = tracked or {m: ("all", m) for m in TRACKED}
        self.history: list[dict] = []

    def _score(self, model, step: int) -> None:
        with evaluate.eval_mode(model):  # LoRA dropout off: the same weights give the same numbers
            records = evaluate.evaluate(model, self.tok, self.rows, f"step {step}", max_new_tokens=self.max_new_tokens)
        summary = {(r["bucket"], r["metric"]): r["value"] for r in evaluate.summarize(records)}
        self.history.append({"step": step, **{column: summary.get(key) for column, key in self.tracked.items()}})

    def on_train_begin(self, args, state, control, model=None, **kwargs):
        if model is not None and not self.history:
            self._score(model, state.global_step)

    def on_step_end(self, args, state, control, model=None, **kwargs):
        last = state.global_step >= state.max_steps or control.should_training_stop
        if model is not None and (state.global_step % self.every == 0 or last):
            self._score(model, state.global_step)
