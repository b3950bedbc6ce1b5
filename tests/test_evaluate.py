"""Evaluation metrics: each criterion can fail, PPL matches transformers' own loss, n = 0 is reported."""
import csv
import json
import math
import os
import subprocess
import sys

import pytest
import torch

import helpers
from helpers import adapters, evaluate as ev, masks


@pytest.fixture(scope="module")
def model(tiny_model_dir):
    return helpers.load_model("tiny-qwen3")


ROWS = [
    {"id": "a", "source": "mawps", "tags": ["math", "en"],
     "messages": [{"role": "user", "content": "Tom has 3 apples and gets 4 more. How many now?"},
                  {"role": "assistant", "content": "7"}]},
    {"id": "b", "source": "json", "tags": ["json-only", "strict"],
     "messages": [{"role": "user", "content": "Output only a JSON object with name (string) and age (number). name=Bo, age=7."},
                  {"role": "assistant", "content": '{"name": "Bo", "age": 7}'}]},
    {"id": "c", "source": "emoji", "tags": ["chat", "zh"],
     "messages": [{"role": "system", "content": "你是助手。"}, {"role": "user", "content": "你好"},
                  {"role": "assistant", "content": "你好！😊"}, {"role": "user", "content": "再见"},
                  {"role": "assistant", "content": "再见！👋"}]},
]


def test_usability_criteria_each_can_fail(tok):
    ok = ev.usability("Seven apples.", True, "How many?", tok)
    assert ok["usable"] and all(ok[c] for c in ev.CRITERIA)
    assert not ev.usability("  ", True, "How many?", tok)["non_empty"]
    assert not ev.usability("Seven", False, "How many?", tok)["stopped"]
    assert not ev.usability("go go go go go go go go go go go go", True, "Go?", tok)["no_repetition"]
    assert not ev.usability("fine<|im_start|>user", True, "Hi", tok)["no_control_leak"]
    assert not ev.usability("fine <think>", True, "Hi", tok)["no_control_leak"]
    assert not ev.usability("Hello there", True, "你好", tok)["language"]
    assert not ev.usability("你好", True, "Hello", tok)["language"]
    assert ev.usability("42", True, "你好吗", tok)["language"], "a reply with no letters is language-neutral"
    assert ev.usability('{"a": 1}', True, "只输出JSON", tok, tags=["json-only"])["language"]


def test_json_check_is_strict_and_typed():
    ref = '{"name": "Bo", "age": 7, "ok": true}'

    def check(reply, reference=ref):
        got = ev.json_check(reply, reference)
        return got["json_valid"], got["json_keys"], got["json_repeats_key"]

    assert check('{"name":"Al","age":3,"ok":false}') == (True, True, False)
    assert check('{"name":"Al","age":3.5,"ok":false}') == (True, False, False), "an integer was asked for"
    assert check('{"price": 20}', '{"price": 20.5}') == (True, True, False), "an integer is a number"
    assert check('{"name":"Al","age":"3","ok":false}') == (True, False, False)
    assert check('{"name":"Al","age":3}') == (True, False, False)
    assert check('{"name":"Al","age":1,"ok":1}')[1] is False, "1 is a number, not a boolean"
    assert check('{"name":"Al","age":3,"ok":false,"age":4}') == (True, False, True), "a repeated key"
    assert check('Sure! {"name":"Al"}') == (False, False, False)
    assert check('[1, 2]') == (False, False, False) and check("27") == (False, False, False), "not an object"


def _matches_transformers_loss(model, tok):
    pairs = ev.token_nll(model, tok, ROWS, max_batch_tokens=200)   # padded batches
    for row, (nll, n) in zip(ROWS, pairs):
        enc = masks.build_labels(tok, row["messages"])
        ids, labels = torch.tensor([enc["input_ids"]]), torch.tensor([enc["labels"]])
        with torch.no_grad():
            mean = model(input_ids=ids, labels=labels).loss.item()
        assert n == sum(1 for x in enc["labels"][1:] if x != masks.IGNORE_INDEX)
        assert nll / n == pytest.approx(mean, rel=1e-4)
    assert ev.perplexity(pairs) == pytest.approx(math.exp(sum(s for s, _ in pairs) / sum(n for _, n in pairs)))
    return pairs


def test_token_nll_matches_transformers_loss(model, tok):
    _matches_transformers_loss(model, tok)


def test_token_nll_counts_the_adapter(tiny_model_dir, tok):
    """With PEFT, the LoRA layers sit inside the backbone token_nll runs; switched off, the base comes back."""
    from peft import LoraConfig, get_peft_model

    base = helpers.load_model("tiny-qwen3")
    plain = ev.token_nll(base, tok, ROWS)
    config = LoraConfig(r=4, target_modules=["q_proj", "down_proj"], init_lora_weights=False)  # random B: it moves
    peft_model = get_peft_model(base, config).eval()
    tuned = _matches_transformers_loss(peft_model, tok)
    assert all(abs(a - b) > 1e-3 for (a, _), (b, _) in zip(plain, tuned))
    with peft_model.disable_adapter():
        assert [nll for nll, _ in ev.token_nll(peft_model, tok, ROWS)] == pytest.approx([nll for nll, _ in plain], rel=1e-5)


def test_batched_generation_equals_one_by_one(model, tok):
    prompts = [ev.split_prompt(r)[0] for r in ROWS]
    batched = ev.generate(model, tok, prompts, max_new_tokens=12, batch_size=3)
    single = [ev.generate(model, tok, [p], max_new_tokens=12)[0] for p in prompts]
    assert batched == single
    assert all(set(g) == {"reply", "stopped", "new_tokens"} for g in batched)
    assert tok.padding_side == "right", "generate must restore the tokenizer's padding side"


def test_summary_reports_no_json_rows_as_n0(model, tok):
    records = ev.evaluate(model, tok, [ROWS[0], ROWS[2]], "base", max_new_tokens=8)
    rows = {(r["metric"], r["bucket"]): r for r in ev.summarize(records)}
    assert rows[("json_valid", "all")]["n"] == 0 and rows[("json_valid", "all")]["value"] is None
    assert rows[("usable", "source:emoji")]["n"] == 1
    assert rows[("perplexity", "all")]["n"] == sum(r["tokens"] for r in records)


def test_write_results_appends_csv_and_logs(model, tok, tmp_path, monkeypatch):
    monkeypatch.setattr(helpers.paths, "EVAL", tmp_path / "eval")
    records = ev.evaluate(model, tok, ROWS, "base", max_new_tokens=8)
    path = tmp_path / "m.csv"
    ev.write_results("r1", "tiny-qwen3", "", {"base": records}, csv_path=path)
    ev.write_results("r2", "tiny-qwen3", "", {"base": records}, csv_path=path)
    rows = list(csv.DictReader(open(path)))
    assert {r["run_id"] for r in rows} == {"r1", "r2"}
    json_row = next(r for r in rows if r["metric"] == "json_valid" and r["bucket"] == "all")
    assert json_row["n"] == "1" and json_row["value"] in ("0", "1")
    ppl_row = next(r for r in rows if r["metric"] == "perplexity" and r["bucket"] == "all")
    assert int(ppl_row["n"]) == sum(r["tokens"] for r in records) > len(records), "perplexity n = trained tokens"
    logged = [json.loads(x) for x in open(tmp_path / "eval" / "r2" / "base.jsonl")]
    assert [r["id"] for r in logged] == ["a", "b", "c"]
    inside = helpers.paths.PROJECT_ROOT / "checkpoints" / "sft-lora-x"
    no_json = [r for r in records if ev.JSON_TAG not in r["tags"]]
    ev.write_results("r3", "tiny-qwen3", str(inside), {"base": no_json, "tuned": no_json}, csv_path=path)
    r3 = [r for r in csv.DictReader(open(path)) if r["run_id"] == "r3"]
    assert {r["adapter"] for r in r3 if r["variant"] == "tuned"} == {"checkpoints/sft-lora-x"}
    assert {r["adapter"] for r in r3 if r["variant"] == "base"} == {""}
    empty = next(r for r in r3 if r["metric"] == "json_valid" and r["bucket"] == "all")
    assert empty["n"] == "0" and empty["value"] == "", "no JSON rows: n = 0 and no value"


def test_adapter_errors(model, tmp_path):
    with pytest.raises(FileNotFoundError, match="run notebook 05"):
        adapters.attach(model, tmp_path / "nothing")
    from peft import LoraConfig, get_peft_model
    from transformers import Qwen3Config, Qwen3ForCausalLM

    small = Qwen3Config(vocab_size=151936, hidden_size=64, intermediate_size=96, num_hidden_layers=1,
                        num_attention_heads=2, num_key_value_heads=1, head_dim=32)
    get_peft_model(Qwen3ForCausalLM(small), LoraConfig(r=2, target_modules=["q_proj"])).save_pretrained(tmp_path / "other")
    with pytest.raises(ValueError, match="does not fit this model.*size mismatch"):
        adapters.attach(model, tmp_path / "other")


def test_chat_cli_does_not_block_without_a_terminal():
    out = subprocess.run([sys.executable, "-m", "helpers.chat"], input="", capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and "not a TTY" in out.stdout


def _env_outside_a_kernel() -> dict:
    """This process's environment without what a Jupyter kernel passes to its children."""
    return {k: v for k, v in os.environ.items() if k not in ("JPY_PARENT_PID", "MPLBACKEND")}


def test_chat_cli_does_not_block_under_a_notebook_cell():
    """``!python -m helpers.chat`` in Jupyter: a pty (stdin is a TTY) inside a kernel's environment."""
    pexpect = pytest.importorskip("pexpect")
    env = _env_outside_a_kernel()
    for extra in ({"JPY_PARENT_PID": "12345"}, {"MPLBACKEND": "module://matplotlib_inline.backend_inline"}):
        child = pexpect.spawn(sys.executable, ["-m", "helpers.chat"], env={**env, **extra}, encoding="utf-8",
                              timeout=60)
        child.expect(pexpect.EOF)
        assert "started from a notebook cell" in child.before
        child.close()
        assert child.exitstatus == 0


def test_chat_cli_talks_in_a_terminal(tiny_model_dir):
    pexpect = pytest.importorskip("pexpect")
    env = _env_outside_a_kernel()
    child = pexpect.spawn(sys.executable, ["-m", "helpers.chat", "--max-new-tokens", "8"], env=env, encoding="utf-8",
                          timeout=90)
    child.expect("you> ")
    child.sendline("Hello!")
    child.expect("bot> (.*)\r\n")
    assert child.match.group(1).strip()
    child.expect("you> ")
    child.sendline("")
    child.expect(pexpect.EOF)


def test_eval_every_scores_before_training_at_each_interval_and_at_the_last_step(model, tok):
    from types import SimpleNamespace

    from helpers import training_evals

    tracker = training_evals.EvalEvery(tok, ROWS, every=2, max_new_tokens=8)
    state, control = SimpleNamespace(global_step=0, max_steps=5), SimpleNamespace(should_training_stop=False)
    model.train()
    tracker.on_train_begin(None, state, control, model=model)
    for step in range(1, 6):
        state.global_step = step
        tracker.on_step_end(None, state, control, model=model)
    assert [h["step"] for h in tracker.history] == [0, 2, 4, 5]
    assert model.training  # the scoring put the model back in training mode
    first = tracker.history[0]
    records = ev.evaluate(model, tok, ROWS, "again", max_new_tokens=8)
    again = {r["metric"]: r["value"] for r in ev.summarize(records) if r["bucket"] == "all"}
    assert first["perplexity"] == pytest.approx(again["perplexity"]) and first["json_valid"] == again["json_valid"]
    with pytest.raises(ValueError, match="positive"):
        training_evals.EvalEvery(tok, ROWS, every=0)


def test_eval_mode_gives_unsloth_its_training_mode_back(monkeypatch):
    import sys
    import types
    from types import SimpleNamespace

    import torch

    restored = []
    fake = types.ModuleType("unsloth")
    fake.FastLanguageModel = SimpleNamespace(for_training=restored.append)
    monkeypatch.setitem(sys.modules, "unsloth", fake)
    model = torch.nn.Sequential(torch.nn.Dropout(0.5)).train()
    with ev.eval_mode(model):
        assert not model.training
    assert model.training and restored == []  # a plain model: nothing of unsloth's to undo
    with ev.eval_mode(model):
        model._flag_for_generation = True  # what unsloth's generate() leaves: checkpointing off, KV cache on
    assert model.training and restored == [model]
    model.eval()
    with ev.eval_mode(model):
        pass
    assert not model.training and restored == [model]  # a model that was not training stays in eval mode


def test_comparison_plot_labels_every_bar_even_a_zero():
    import matplotlib
    import pandas as pd

    matplotlib.use("Agg")
    table = pd.DataFrame([{"metric": m, "bucket": "all", "n": n, "base": b, "tuned": t} for m, n, b, t in
                          [("perplexity", 90, 900.0, 5.0), ("usable", 10, 0.9, 0.8), ("json_keys", 4, 0.0, 0.0)]])
    ax = ev.plot_comparison(table)
    assert [t.get_text() for t in ax.texts] == ["0.90", "0.00", "0.80", "0.00"]
    assert "900.0 → 5.00" in ax.get_title()
