"""Build notebooks/05_qlora_training.ipynb (no outputs): ``python notebooks/make_05_qlora_training.py``."""
from pathlib import Path

import nbformat as nbf

md, code = nbf.v4.new_markdown_cell, nbf.v4.new_code_cell
cells = [
    md("""# 05 · QLoRA training: a 4-bit base, LoRA adapters, assistant-only loss

The flow from data to adapter (the seed's section 5):

```
mixed dataset (notebook 04) → 4-bit NF4 base → LoRA adapters (r, alpha, dropout, targets)
   → SFTTrainer(assistant_only_loss, packing) → trainer.train() → checkpoints/sft-lora-<run>/
```

Everything below calls `helpers.train`; on the default (`tiny-qwen3`, preset `cpu-tiny`) the
whole notebook runs on a laptop CPU in a few minutes. Set `MODEL = "unsloth/Qwen3-4B-Instruct-2507"`
and a `gpu-*` preset on a GPU machine for the real thing."""),
    code("""MODEL = "tiny-qwen3"        # or "unsloth/Qwen3-4B-Instruct-2507" on a GPU
PRESET = "cpu-tiny"         # cpu-tiny | gpu-16gb | gpu-24gb | gpu-80gb
RUN = "day2-tiny"           # adapter -> checkpoints/sft-lora-<RUN>/, logs -> runs/<RUN>/
MAX_STEPS = None            # None: the preset's (cpu-tiny: 60 steps)
TIME_BUDGET_S = None        # None: the preset's (cpu-tiny: stop after 170 s whatever MAX_STEPS says)
R, ALPHA, DROPOUT = 16, 32, 0.05
DATA_PATH = None            # None: notebook 04's output (built from data/ if missing)""", metadata={"tags": ["parameters"]}),
    code("""import time

import matplotlib.pyplot as plt
import pandas as pd
import datasets
import torch

from helpers import evaluate, memory, train, widgets
from helpers.train_data import course_splits

datasets.disable_progress_bars()
overrides = {k: v for k, v in dict(max_steps=MAX_STEPS, time_budget_s=TIME_BUDGET_S).items() if v is not None}
cfg = train.TrainConfig.preset_config(PRESET, model=MODEL, run=RUN, r=R, alpha=ALPHA, dropout=DROPOUT, **overrides)
path = train.choose_path()
print("training path →", path)
print(f"preset {cfg.preset}: batch {cfg.batch_size} × grad-accum {cfg.grad_accum} = {cfg.effective_batch()} "
      f"sequences of ≤ {cfg.max_length} tokens per update, lr {cfg.lr:g}, max_steps {cfg.max_steps}")"""),
    md("""## 1 · Quantisation: the frozen base in 4-bit NF4

QLoRA loads the base's linear layers in **NF4** (4-bit NormalFloat: 16 levels placed at the
quantiles of a normal distribution, which is how trained weights are distributed — more
faithful than plain int4), with **double quantisation** (the per-block scales are themselves
quantised, ~0.4 bit/weight saved) and **bf16 compute** (each layer is de-quantised to bf16
on the fly for its matmul). The embedding and norms stay in higher precision.

On a CPU the same bitsandbytes path runs; `helpers.train` switches off bitsandbytes'
avx512-bf16 weight repacking, which otherwise corrupts gradients after the first eval step
(tests/test_train.py shows both the failure and the fix)."""),
    code("""print(train.bnb_config().to_dict() | {})
model, tok, path = train.build_model(cfg, path)
base = model.get_base_model()
q = base.model.layers[0].self_attn.q_proj
print(type(q.base_layer).__name__, "weight stored as", q.base_layer.weight.dtype, tuple(q.base_layer.weight.shape),
      "for a", (q.in_features, q.out_features), "layer")
kinds = pd.Series([type(m).__name__ for m in base.modules()]).value_counts()
kinds[kinds.index.str.contains("Linear|Embedding")]"""),
    md("""## 2 · LoRA: r, alpha, dropout and target modules

Each targeted projection `W` (frozen, 4-bit) gets a trainable low-rank update `ΔW = (alpha/r)·B·A`
with `A: r×in`, `B: out×r` (B starts at zero, so training starts from the base model).
* **r** — rank, capacity: 4–8 small and cheap, 32+ fits more and costs more memory/time.
* **alpha** — scale; the update is multiplied by `alpha/r`, so `alpha = 2·r` keeps the
  step size similar when you change r. Too small under-trains, too large over-fits.
* **dropout** — applied to the adapter's input during training only (0.05 here).
* **targets** — the course trains all 7 projections (`q k v o` attention, `gate up down` MLP).

The widget counts the parameters LoRA adds **on the loaded model** and estimates Qwen3-4B's
peak VRAM for a GPU preset (`helpers.memory.estimate`; bench/ measures it)."""),
    code("""trainable, total = train.trainable_parameters(model)
print(f"trainable {trainable:,} of {total:,} parameters ({trainable / total:.2%}); "
      f"exact count from the modules: {train.lora_param_count(base, cfg.r, cfg.target_modules):,}")
print(base.model.layers[0].mlp.down_proj)
widgets.lora_explorer(base)"""),
    code("""rows = []
for r in (4, 8, 16, 32, 64):
    s = train.lora_summary(base, r=r, alpha=2 * r, preset="gpu-16gb")
    rows.append({"r": r, "alpha": 2 * r, "LoRA params (this model)": s["lora_params"],
                 "LoRA params (Qwen3-4B)": s["qwen3_4b_lora_params"], "est. VRAM GiB (4B, gpu-16gb)": s["qwen3_4b_vram_gib"]})
pd.DataFrame(rows).set_index("r")"""),
    md("""## 3 · Sequence length, the memory trio, batch × grad-accum

* **max_length** — tokens per (packed) row; activations grow linearly with it. Start at 1k.
* **The memory trio**: `packing=True` (several short samples per row, no padding),
  `bf16=True` (half-size activations), `gradient_checkpointing=True` (keep one hidden state per
  layer and recompute the rest in backward: far less memory for ~20–30 % more compute).
* **Batch** — `per_device_train_batch_size × gradient_accumulation_steps` samples per update;
  the first sets memory, the product sets the optimisation.
* **Optimiser** — AdamW, lr 1e-4–2e-4 on the 4B, weight decay 0.01, warm-up 3 %, cosine decay.
  The tiny CPU model takes a larger lr (2e-3) because it gets only ~60 updates.

The presets, with the estimated Qwen3-4B peak for each:"""),
    code("""preset_rows = []
for name, p in train.PRESETS.items():
    c = {**vars(train.TrainConfig()), **p}
    est = memory.estimate(memory.QWEN3_4B, r=c["r"], batch=c["batch_size"], seq=c["max_length"], fused_head=True)
    preset_rows.append({"preset": name, "model": c["model"], "batch": c["batch_size"], "grad_accum": c["grad_accum"],
                        "effective": c["batch_size"] * c["grad_accum"], "max_length": c["max_length"], "lr": c["lr"],
                        "est. 4B peak GiB": round(est["total"], 1)})
pd.DataFrame(preset_rows).set_index("preset")"""),
    md("""## 4 · The data and what `max_length` does to it

The mixed set from notebook 04. Samples longer than `max_length` are cut (TRL keeps the
start); assistant tokens past the cut leave the loss mask, and a sample whose answer lies
entirely past it trains nothing — counted here, not silently."""),
    code("""splits = course_splits(DATA_PATH)
report = train.length_report(splits["train"], tok, cfg.max_length)
lengths = [len(tok.apply_chat_template(r["messages"], tokenize=True)) for r in splits["train"]]
fig, ax = plt.subplots(figsize=(7, 2.6))
ax.hist(lengths, bins=40, color="#60a5fa")
ax.axvline(cfg.max_length, color="#dc2626", ls="--", label=f"max_length {cfg.max_length}")
ax.set(xlabel="tokens per sample", ylabel="samples", title="training sample lengths"); ax.legend()
plt.show()
report"""),
    md("""## 5 · The trainer: TRL `SFTTrainer` + `SFTConfig`

`assistant_only_loss=True` trains only the assistant turns (TRL swaps the Qwen3 template for its
`{% generation %}`-marked twin — notebook 03); `packing=True` with strategy `bfd` packs samples
into rows of `max_length` and makes the batch padding-free (`position_ids` restart at each
sample). Logs go to `runs/<RUN>/` (`log.csv`, `log.jsonl`, TensorBoard), no wandb."""),
    code("""trainer = train.build_trainer(cfg, model, tok, splits, path)
a = trainer.args
print({k: getattr(a, k) for k in ("assistant_only_loss", "packing", "packing_strategy", "padding_free", "max_length",
                                   "per_device_train_batch_size", "gradient_accumulation_steps", "gradient_checkpointing",
                                   "learning_rate", "lr_scheduler_type", "warmup_steps", "weight_decay", "seed", "bf16")})
batch = trainer.data_collator([trainer.train_dataset[i] for i in range(cfg.batch_size)])
starts = int((batch["position_ids"] == 0).sum()) if "position_ids" in batch else len(batch["input_ids"])
print(f"one batch: {batch['input_ids'].shape[1]} positions, {starts} samples packed, "
      f"{float((batch['labels'] != -100).float().mean()):.0%} of positions trained")
trainer.course["counter"].positions = trainer.course["counter"].real = trainer.course["counter"].trained = 0"""),
    md("""Before training: the base model on the validation prompts that ask for strict JSON."""),
    code("""json_rows = [r for r in splits["validation"] if evaluate.JSON_TAG in (r.get("tags") or [])]

def json_validity(adapter: bool, show: int = 2) -> float:
    model.eval()
    with evaluate.adapter_switch(model, adapter):
        gens = evaluate.generate(model, tok, [evaluate.split_prompt(r)[0] for r in json_rows], max_new_tokens=64)
    ok = [evaluate.json_check(g["reply"], evaluate.split_prompt(r)[1])["json_valid"] for g, r in zip(gens, json_rows)]
    for g, r in list(zip(gens, json_rows))[:show]:
        print(f"  {r['messages'][-2]['content'][:70]!r}\\n    → {g['reply'][:80]!r}")
    return sum(ok) / len(ok) if ok else float("nan")

base_valid = json_validity(adapter=False)
print(f"base model: {base_valid:.0%} valid JSON on {len(json_rows)} validation prompts")"""),
    md("""## 6 · Train"""),
    code("""start = time.perf_counter()
result = trainer.train()
seconds = time.perf_counter() - start
hist = trainer.course["throughput"].history
print(f"{trainer.state.global_step} steps in {seconds:.0f} s; "
      f"{sum(h['tokens_per_s'] for h in hist) / max(1, len(hist)):,.0f} real tokens/s on average")
losses = train.loss_history(trainer)
print("train loss first → last:", losses["loss"][0][1], "→", losses["loss"][-1][1])"""),
    code("""fig, axes = plt.subplots(1, 3, figsize=(13, 3))
for key, style in (("loss", "-o"), ("eval_loss", "s--")):
    if losses[key]:
        axes[0].plot(*zip(*losses[key]), style, label=key, ms=3)
axes[0].set(xlabel="step", title="loss (assistant tokens)"); axes[0].legend()
steps = [h["step"] for h in hist]
axes[1].plot(steps, [h["tokens_per_s"] for h in hist], "-o", ms=3, label="real tokens/s")
axes[1].plot(steps, [h["trained_tokens_per_s"] for h in hist], "-o", ms=3, label="trained tokens/s")
axes[1].set(xlabel="step", title="throughput"); axes[1].legend()
axes[2].plot(steps, [h["peak_mem_gib"] for h in hist], "-o", ms=3, color="#7c3aed")
axes[2].set(xlabel="step", title=f"peak memory GiB ({hist[-1]['mem_kind'] if hist else ''}), padding "
            f"{hist[-1]['padding_frac'] if hist else 0:.0%}")
plt.tight_layout(); plt.show()"""),
    code("""out = train.save_adapter(trainer, cfg)
print(out)
sorted(p.name for p in out.iterdir())"""),
    code("""tuned_valid = json_validity(adapter=True)
print(f"JSON validity: base {base_valid:.0%} → tuned {tuned_valid:.0%}  (notebook 06 measures it properly)")"""),
    md("""## 7 · When memory runs out: the OOM ladder, and batch-size tables

The seed's order of things to try, with the estimator's Qwen3-4B numbers (transformers +
bitsandbytes + TRL's chunked loss; unsloth needs less). Measured peaks on an H200 are in
`bench/results/gpu_shape_bench.md` and in the last cell."""),
    code("""def est(**k):
    base_k = dict(r=16, batch=1, seq=2048, gradient_checkpointing=False, fused_head=True)
    return round(memory.estimate(memory.QWEN3_4B, **{**base_k, **k})["total"], 1)

ladder = [("start: batch 1, seq 2048, no checkpointing, r=16", est()),
          ("1. max_length 2048 → 1024", est(seq=1024)),
          ("2. keep the effective batch with grad-accum 8 → 16 (batch stays 1)", est(seq=1024)),
          ("   + gradient checkpointing", est(seq=1024, gradient_checkpointing=True)),
          ("3. lower r 16 → 8 (and alpha)", est(seq=1024, gradient_checkpointing=True, r=8)),
          ("4. eval less often / eval batch 1", est(seq=1024, gradient_checkpointing=True, r=8))]
display(pd.DataFrame(ladder, columns=["step", "est. peak GiB (Qwen3-4B)"]))
table = [{"config": f"{b}×{g}", "per_device_batch": b, "grad_accum": g, "effective": b * g,
          "est. peak GiB @1024": est(batch=b, seq=1024, gradient_checkpointing=True),
          "optimizer updates per 1k samples": 1000 // (b * g)} for b, g in ((1, 16), (2, 8), (4, 4), (8, 2))]
pd.DataFrame(table).set_index("config")"""),
    code("""import json
from helpers import paths
bench = paths.PROJECT_ROOT / "bench" / "results" / "gpu_shape_bench.json"
if bench.is_file():
    res = json.loads(bench.read_text())
    print(res["meta"]["device"], "·", res["meta"]["when"])
    display(pd.DataFrame([r for r in res["rows"] if r.get("ok")])[["path", "route", "shape", "tokens_per_s", "peak_gib", "estimate_gib"]].round(2))
else:
    print("no GPU benchmark results yet: python bench/gpu_shape_bench.py on a CUDA machine")"""),
]

nb = nbf.v4.new_notebook(cells=cells, metadata={"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"}})
out = Path(__file__).with_name("05_qlora_training.ipynb")
nbf.write(nb, out)
print("wrote", out)
