"""Build notebooks/07_merge_and_serve.ipynb (no outputs): ``python notebooks/make_07_merge_and_serve.py``."""
from pathlib import Path

import nbformat as nbf

md, code = nbf.v4.new_markdown_cell, nbf.v4.new_code_cell
cells = [
    md("""# 07 · Merge, export and serve

Two ways to use the LoRA adapter that notebook 05 trained (the seed's section 7):

* **adapter mounted** — `base + adapter`, the adapter kept separate (what notebook 06 evaluated).
  Small files, several adapters can share one base, but every forward pass does the extra
  `B·A` matmuls.
* **merged** — fold the update into the weights, `W' = W + (alpha/r)·B·A`, and ship one ordinary
  model folder that any engine (transformers, vLLM, llama.cpp after GGUF conversion) loads.

```
checkpoints/sft-lora-<run>/  ──(bf16 base + merge_and_unload)──▶  checkpoints/merged-<run>/  ──▶  vLLM / GGUF
```

Everything below calls `helpers.merge` and `helpers.serve`. On the default (`tiny-qwen3`, CPU)
the whole notebook runs in well under two minutes; set `MODEL = "unsloth/Qwen3-4B-Instruct-2507"`
on a GPU machine for the real thing."""),
    code("""MODEL = "tiny-qwen3"          # or "unsloth/Qwen3-4B-Instruct-2507" (the base the adapter was trained on)
ADAPTER = ""                  # "" = newest checkpoints/sft-lora-*; none → an untrained demo adapter
RUN = "day2"                  # merged model -> checkpoints/merged-<RUN>/
OVERWRITE = True              # False: refuse to replace an existing checkpoints/merged-<RUN>/
SHARD_SIZE = ""               # "" = 20MB for tiny-qwen3 (to show sharding), 5GB otherwise
N_PROMPTS = 6                 # validation prompts used for the proof
MAX_NEW_TOKENS = 32
SERVER_URL = "http://127.0.0.1:8000/v1"   # an OpenAI-compatible server (vLLM), if one runs""",
         metadata={"tags": ["parameters"]}),
    code("""from helpers import params

params.check(MODEL=(MODEL, str), ADAPTER=(ADAPTER, str), RUN=(RUN, str), OVERWRITE=(OVERWRITE, bool),
             SHARD_SIZE=(SHARD_SIZE, str), N_PROMPTS=(N_PROMPTS, int), MAX_NEW_TOKENS=(MAX_NEW_TOKENS, int),
             SERVER_URL=(SERVER_URL, str))

import json
import warnings

import pandas as pd
import transformers

from helpers import adapters, evaluate, merge, paths, serve
from helpers.models import resolve
from helpers.train_data import course_splits

warnings.filterwarnings("ignore", message=".*4-bit linear may get different generations.*")  # measured below
pd.set_option("display.max_colwidth", 80)
transformers.utils.logging.disable_progress_bar()
adapter = merge.pick_adapter(ADAPTER, MODEL, RUN)
cfg = adapters.adapter_config(adapter)
print(f"LoRA r={cfg['r']}, alpha={cfg['lora_alpha']}, targets={sorted(cfg['target_modules'])}")
val = course_splits()["validation"]
prompts = [evaluate.split_prompt(r)[0] for r in val.select(range(min(N_PROMPTS, len(val))))]
print(f"{len(prompts)} validation prompts, e.g. {prompts[0][-1]['content'][:70]!r}")"""),
    md("""## 1 · Adapter mounted: base + adapter

The base is loaded in **full precision** — bf16 on a GPU, fp32 on a CPU (bf16 matmuls are slow
and inexact there) — **not** the 4-bit NF4 copy used for training. PEFT wraps each targeted
linear layer: the frozen `base_layer` plus `lora_A` (r × in) and `lora_B` (out × r)."""),
    code("""peft_model, tok = merge.base_with_adapter(MODEL, adapter)
layer = peft_model.get_base_model().model.layers[0].self_attn.q_proj
print("dtype", peft_model.dtype, "| 4-bit weights anywhere:", merge.is_quantized(peft_model))
print(layer)
with peft_model.disable_adapter():
    logits_base = merge.prompt_logits(peft_model, tok, prompts)
logits_adapter = merge.prompt_logits(peft_model, tok, prompts)
replies_adapter = merge.greedy(peft_model, tok, prompts, MAX_NEW_TOKENS)
shift = merge.logits_diff(logits_adapter, logits_base)
print(f"the adapter moves the logits by up to {shift['max_abs_diff']:.3g}; "
      f"it changes the top-1 token at {1 - shift['argmax_agree']:.0%} of prompt positions")
del peft_model, layer  # logits and replies are kept; one model in memory at a time (16 GB GPUs)
merge.release()"""),
    md("""## 2 · Merge into a full-precision copy and save

`merge_and_unload()` adds `(alpha/r)·B·A` to every targeted weight and removes the LoRA wrappers,
leaving a plain `Qwen3ForCausalLM`. `save_pretrained` writes **sharded safetensors** (an index file
maps each tensor to its shard), then the tokenizer (with its chat template) and the generation
config go beside it. An existing folder is refused unless `OVERWRITE = True`."""),
    code("""shard = SHARD_SIZE or ("20MB" if MODEL == "tiny-qwen3" else "5GB")
out = merge.merge(MODEL, adapter, merge.merged_dir(RUN), overwrite=OVERWRITE, max_shard_size=shard)
print(json.loads((out / merge.INFO).read_text()))
pd.DataFrame([{"file": p.name, "MB": round(p.stat().st_size / 1e6, 2)} for p in sorted(out.iterdir())])"""),
    md("""What `OVERWRITE = False` does with that folder now (the error is the message a student sees):"""),
    code("""try:
    merge.merge(MODEL, adapter, out, overwrite=False)
except FileExistsError as err:
    print("refused:", err)"""),
    md("""## 3 · Proof: merged == base + adapter

Reload the folder with plain `AutoModelForCausalLM` (no PEFT) and compare with what the mounted
adapter produced in section 1 on the validation prompts: every logit at every position, and
greedy generations.

**Tolerance** (`merge.TOLERANCE`): in fp32 the two differ only in the order of additions
(`W·x + B·(A·x)` vs `(W + B·A)·x`), so |Δlogit| < 1e-3. In bf16 (GPU) `W + B·A` is rounded to 8
significant bits; expect up to a few tenths on Qwen3-4B and state 0.5."""),
    code("""merged = merge.load_merged(out)
print(type(merged).__name__, merged.dtype, "| PEFT wrappers left:", hasattr(merged, "peft_config"))
logits_merged = merge.prompt_logits(merged, tok, prompts)
diff = merge.logits_diff(logits_merged, logits_adapter)
tol = merge.TOLERANCE[merged.dtype]
print(f"max |merged − (base+adapter)| = {diff['max_abs_diff']:.2e} over {diff['positions']} positions × "
      f"{logits_merged[0].shape[-1]:,} logits (tolerance {tol:g}) → {'✅ within' if diff['max_abs_diff'] < tol else '❌ beyond'}")
print(f"top-1 token agrees at {diff['argmax_agree']:.1%} of positions; relative error of the adapter's effect "
      f"{merge.effect_error(logits_base, logits_adapter, logits_merged):.1e}")"""),
    code("""pairs = pd.DataFrame({"prompt": [p[-1]["content"][:60] for p in prompts],
                      "merged": merge.greedy(merged, tok, prompts, MAX_NEW_TOKENS), "base + adapter": replies_adapter})
pairs["identical"] = pairs["merged"] == pairs["base + adapter"]
print(f"identical greedy generations ({MAX_NEW_TOKENS} new tokens): {int(pairs['identical'].sum())} of {len(pairs)}")
del merged
merge.release()
pairs"""),
    md("""## 4 · Why never merge into the 4-bit weights

QLoRA trains against NF4 weights: 16 levels per block of 64 weights, scaled by the block's
largest magnitude. Merging into them means *de-quantise → add `B·A` → quantise again*. The
update is small compared with the gap between two NF4 levels, so re-quantising rounds much of
it away and adds fresh rounding noise to every weight of the layer. PEFT warns
("*may get different generations due to rounding errors*"); the cell measures it against the
unmerged 4-bit base + adapter — the model QLoRA actually trained."""),
    code("""r4 = merge.merge_into_4bit(MODEL, adapter, prompts)
print(f"{r4['layers']} LoRA layers merged into NF4. Per weight: mean |B·A| = {r4['delta_abs_mean']:.2e}, "
      f"mean error of what was kept = {r4['rounding_abs_mean']:.2e}")
print(f"→ {r4['delta_rel_error']:.0%} relative error in the merged update (full-precision merge: ~1e-7)")
print(f"→ logits vs the unmerged 4-bit base + adapter: max |Δ| {r4['logits_vs_unmerged']['max_abs_diff']:.2f}, "
      f"top-1 agrees at {r4['logits_vs_unmerged']['argmax_agree']:.0%} of positions")
print(f"→ {r4['effect_error']:.0%} of the adapter's effect on the logits is wrong "
      f"(the adapter itself moves them by up to {r4['adapter_shift']:.2f})")
print("PEFT's warning:", r4["peft_warnings"])"""),
    md("""A trained adapter's update is usually smaller than this demo's, and the smaller the update,
the more of it the rounding eats. The same measurement on an adapter ten times smaller:"""),
    code("""small = merge.demo_adapter(MODEL, paths.CHECKPOINTS / f"{merge.DEMO_PREFIX}{RUN}-small", b_std=0.005)
rows = [{"adapter": name, **{k: r[k] for k in ("delta_abs_mean", "rounding_abs_mean", "delta_rel_error", "effect_error")}}
        for name, r in (("this notebook's", r4), ("10× smaller update", merge.merge_into_4bit(MODEL, small, prompts)))]
pd.DataFrame(rows).style.format({"delta_abs_mean": "{:.1e}", "rounding_abs_mean": "{:.1e}",
                                 "delta_rel_error": "{:.0%}", "effect_error": "{:.0%}"})"""),
    md("""So: merge into the **bf16** (or fp32) base — what `helpers.merge` does and what unsloth's
`save_pretrained_merged(..., save_method="merged_16bit")` does. If you need a small file
afterwards, quantise the *merged* model once (GGUF `q4_k_m`, AWQ, GPTQ…), with a method built for
deployment. Note that the bf16 merge is not bit-identical to the model you trained either: the
adapter learned against NF4-rounded base weights. `helpers.load_model` accepts the merged folder as
a model name, so notebook 06's metrics can be run on it to check that this difference is small."""),
    md("""## 5 · Sizes: adapter vs merged model

The adapter stores only `A` and `B`; the merged folder stores every weight of the model."""),
    code("""sizes = pd.DataFrame(merge.size_table(adapter, out))
print(f"merged weights / adapter weights = {sizes['weights MB'][1] / sizes['weights MB'][0]:.0f}×")
real = merge.real_model_sizes(r=16)
print(f"Qwen3-4B ({real['params'] / 1e9:.2f} B parameters): merged bf16 ≈ {real['merged_bf16_GB']:.1f} GB; "
      f"LoRA r=16 on all 7 projections = {real['lora_params'] / 1e6:.1f} M parameters ≈ "
      f"{real['adapter_fp32_MB']:.0f} MB in fp32 ({real['adapter_bf16_MB']:.0f} MB in bf16)")
sizes.round(2)"""),
    md("""Both folders also hold the tokenizer files (Qwen's 151k-token vocabulary; the gap between the two
MB columns), so compare the *weights* columns.

## 6 · Several adapters on one base: `set_adapter`

Keeping adapters separate lets one base serve several fine-tunes (per customer, per task):
load each under a name, then `set_adapter(name)` picks the active one — no reload.
`disable_adapter()` gives the base back."""),
    code("""second = merge.second_adapter(adapter, MODEL, RUN)
multi, tok = merge.base_with_adapter(MODEL, adapter, name="first")
adapters.attach(multi, second, name="second")
print("loaded adapters:", list(multi.peft_config), "| active:", multi.active_adapter)
replies = pd.DataFrame(merge.adapter_replies(multi, tok, prompts, MAX_NEW_TOKENS))
multi.set_adapter("first")
same = merge.logits_diff(merge.prompt_logits(multi, tok, prompts[:2]), logits_adapter[:2])["max_abs_diff"]
print(f"set_adapter('first') gives back exactly the single-adapter model: max |Δlogit| {same:.1e}")
print(f"prompts where the two adapters answer differently: {int((replies['first'] != replies['second']).sum())} of {len(replies)}")
replies"""),
    md("""## 7 · Serving with vLLM

vLLM is an inference engine (paged KV cache, continuous batching) with an OpenAI-compatible HTTP
API; it needs Linux and a CUDA GPU. Run **one** of these in a terminal on the GPU machine (not
from the notebook: a server started with `!cmd &` outlives the kernel and holds the GPU). The
flags are the seed's for a 16 GB RTX 4080: they cap memory (`--gpu-memory-utilization 0.82`),
context (`--max-model-len`), concurrency (`--max-num-seqs`, `--max-num-batched-tokens`) and skip
CUDA-graph capture (`--enforce-eager`, saves memory and start-up time). `--kv-cache-dtype fp8`
halves the KV cache where the GPU supports it.

**Merged model** — point vLLM at the folder holding `config.json`:"""),
    code("""print(serve.vllm_merged_command(out.resolve()))"""),
    md("""**Base + adapter** (`--enable-lora`): the base loads once; a request whose `model` is the
LoRA name gets the adapter, a request for the base name gets the base. `--max-lora-rank` must be
at least the adapter's `r` (vLLM accepts 8, 16, 32, 64 …; the helper rounds up). The base must be the one the adapter was trained on (the hub id for
the real model)."""),
    code("""base_id = MODEL if MODEL != "tiny-qwen3" else resolve(MODEL)
print(serve.vllm_lora_command(base_id, adapter.resolve(), lora_name="day2-lora", r=cfg["r"]))"""),
    md("""**Talk to it.** This cell first asks `SERVER_URL` for `/models` with a one-second timeout;
it sends a chat request only when a server answers, otherwise it says why and moves on (so the
notebook also runs where no server exists, e.g. on a laptop or in CI)."""),
    code("""up, info = serve.probe(SERVER_URL, timeout=1.0)
if up:
    served = info.split(", ")[0]
    print(f"server at {SERVER_URL} serves: {info}; asking {served!r}")
    print(serve.chat(SERVER_URL, served, prompts[0], max_tokens=MAX_NEW_TOKENS))
else:
    print(f"skipped: {info}. Start one of the commands above on a GPU machine, then re-run this cell.")"""),
    md("""## 8 · GGUF export (llama.cpp, Ollama, LM Studio) — for GPU users with unsloth

GGUF is llama.cpp's single-file format; its quantisations (`q4_k_m`, `q8_0`, …) are made for
inference from a **16-bit** model, which is why the merge comes first. unsloth does merge +
conversion in one call (it builds llama.cpp on first use, which needs internet, a compiler and
some minutes); run it on the GPU machine after notebook 05's unsloth path:

```python
from unsloth import FastLanguageModel

model, tokenizer = FastLanguageModel.from_pretrained("checkpoints/sft-lora-<run>", max_seq_length=2048,
                                                     load_in_4bit=True)   # base + adapter
model.save_pretrained_merged("checkpoints/merged-<run>-unsloth", tokenizer, save_method="merged_16bit")
model.save_pretrained_gguf("checkpoints/gguf-<run>", tokenizer, quantization_method="q4_k_m")  # or "q8_0", "f16"
```

Without unsloth, convert the folder this notebook wrote with llama.cpp's own script:
`python convert_hf_to_gguf.py checkpoints/merged-<run> --outtype bf16` then
`llama-quantize model-bf16.gguf model-q4_k_m.gguf Q4_K_M`. Qwen3-4B is ~8 GB in bf16 and ~2.5 GB
in `q4_k_m`.

## What to remember
* Merge into the **bf16** base (fp32 on CPU), never into 4-bit weights — measured above.
* Prove a merge: reload it as a plain model and compare logits (fp32: < 1e-3) and greedy outputs.
* An adapter is a few MB to a few hundred MB; the merged model is the full model. Keep adapters
  to swap them (`set_adapter`, vLLM `--enable-lora`); merge to ship one folder."""),
]

nb = nbf.v4.new_notebook(cells=cells, metadata={
    "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
    "language_info": {"name": "python"}})
out = Path(__file__).with_name("07_merge_and_serve.ipynb")
nbf.write(nb, out)
print(f"wrote {out}")
