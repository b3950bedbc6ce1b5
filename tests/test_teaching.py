"""What the notebooks teach holds: recaps and exercises in place, and each claim a notebook makes about a
library (collators, tokens, datasets, vLLM flags) checked against the library itself."""
import json
import re
import shlex
import sys

import datasets
import matplotlib
import numpy as np
import pytest

matplotlib.use("Agg")

from helpers import check, environment, packing, paths, serve, templates, tokens  # noqa: E402
from helpers.data import report  # noqa: E402
from tools import run_course  # noqa: E402

sys.path.insert(0, str(paths.PROJECT_ROOT))
from solutions.answers import ANSWERS  # noqa: E402

# The notebooks this file holds to the recap and exercise rules.
TAUGHT = ("00", "01", "02", "03", "04", "05", "06", "07")
NOTEBOOKS = {nb.name[:2]: nb for nb in run_course.notebooks()}


def _cells(number: str) -> list[dict]:
    return run_course.cells(NOTEBOOKS[number])


def _source(cell: dict) -> str:
    return "".join(cell["source"])


# ----------------------------------------------------------------------------- recaps and exercises
@pytest.mark.parametrize("number", TAUGHT)
def test_notebook_ends_with_what_you_learned_and_next(number):
    *_, learned, nxt = [_source(c) for c in _cells(number)]
    assert learned.startswith("## What you learned\n"), learned[:80]
    points = [ln for ln in learned.splitlines()[1:] if ln.startswith("* ")]
    assert 3 <= len(points) <= 5 and len(points) == len(learned.splitlines()) - 1
    assert nxt.startswith("## Next\n") and len(nxt.splitlines()) == 2, nxt
    following = sorted(n for n in NOTEBOOKS if n > number)
    if following:
        assert f"**{following[0]}" in nxt, f"notebook {number}'s Next must name notebook {following[0]}"


@pytest.mark.parametrize("number", TAUGHT)
def test_notebook_poses_a_predict_or_modify_exercise(number):
    keys = [k for k in check.EXERCISES if k.startswith(number)]
    thinking = [k for k in keys if check.question(k).startswith(("Predict", "Modify"))]
    assert thinking, f"notebook {number} needs a predict-then-run or modify-and-observe exercise, has {keys}"
    posed = [_source(c) for c in _cells(number) if "exercise" in c.get("metadata", {}).get("tags", [])]
    assert any(f'check.answer("{k}"' in src for k in thinking for src in posed)


def _answer_forms(value) -> list[str]:
    """How an answer would look if a cell printed it; short numbers are too common to look for."""
    if isinstance(value, str):
        return [value, repr(value)]
    if isinstance(value, (set, frozenset)):
        return [repr(sorted(value)), repr(value)]
    if isinstance(value, float) or (isinstance(value, int) and abs(value) >= 1000):
        return [str(value), f"{value:,}"]
    return []


@pytest.mark.parametrize("key", sorted(k for k in ANSWERS if k[:2] in TAUGHT))
def test_no_cell_above_an_exercise_holds_its_answer(key):
    cells = _cells(key[:2])
    at = next(i for i, c in enumerate(cells) if f'check.answer("{key}"' in _source(c))
    above = "\n".join(_source(c) for c in cells[:at])
    choices = _source(cells[at])   # a multiple-choice question names its answer among the options
    leaks = [form for form in _answer_forms(ANSWERS[key]) if form in above and form not in choices]
    assert leaks == [], f"exercise {key}: its answer {leaks} is written above it"


@pytest.mark.parametrize("key", sorted(check.EXERCISES))
def test_an_unanswered_exercise_prints_its_hint(key, capsys):
    check.answer(key, None)   # what a papermill run does: no exception
    out = capsys.readouterr().out
    assert f"⏳ {key}: not answered yet. Hint: " in out


def test_an_exercise_hands_out_its_input(tok):
    conversation = check.given("01.2")
    assert [m["role"] for m in conversation].count("tool") == 2
    assert templates.render(tok, conversation).count("<tool_response>") == 2
    with pytest.raises(KeyError, match="no given input"):
        check.given("03.1")


# ----------------------------------------------------------------------------- 01, 02: templates and tokens
def test_turn_legend_names_only_the_roles_shown(tok):
    page = templates.turns_html(templates.render(tok, templates.load_examples()["tool-0201"]))
    legend = page.split("<pre")[0]
    assert re.findall(r">(\w+)</span>", legend) == ["system", "user", "assistant"]
    assert "tool<" not in legend   # a tool message renders inside a user turn


def test_pad_equal_to_eos_loses_the_stop_labels_only_with_transformers_collator(tok):
    rows = {(c, pad): tokens.stop_labels_kept(tok, pad, c) for c in tokens.COLLATORS for pad in (None, tok.eos_token)}
    stops = rows["transformers", None]["eos_in_inputs"]
    assert stops > 0
    assert rows["transformers", tok.eos_token]["eos_labels_trained"] == 0
    assert rows["transformers", tok.eos_token]["real_labels_masked"] == stops
    for key in [("transformers", None), ("trl", None), ("trl", tok.eos_token)]:
        assert rows[key]["eos_labels_trained"] == stops and rows[key]["real_labels_masked"] == 0, key


def test_a_pad_token_that_occurs_in_the_text_masks_real_labels(tok):
    assert tokens.stop_labels_kept(tok, "Hi")["real_labels_masked"] > 0
    assert tokens.stop_labels_kept(tok, "<|vision_pad|>")["real_labels_masked"] == 0
    with pytest.raises(ValueError, match="collator"):
        tokens.stop_labels_kept(tok, collator="pandas")


def test_token_table_says_what_every_added_token_is(tok):
    rows = {r["token"]: r for r in tokens.special_token_table(tok)}
    assert len(rows) == 26 and all(r["what it is"] for r in rows.values())
    assert rows["<|endoftext|>"]["role"] == "pad" and "not their eos" in rows["<|endoftext|>"]["what it is"]
    assert rows["<|im_end|>"]["role"] == "eos"
    assert not any(t.startswith("<|extra_") for t in rows)


# ----------------------------------------------------------------------------- 03, 04
def test_packing_report_is_a_sentence():
    from collections import Counter

    assert packing.report_line(Counter({"fits": 35}), 256) == (
        "35 samples fit in 256 tokens; none was longer, so nothing was cut or dropped")
    assert packing.report_line(Counter({"fits": 3, "dropped: reply cut": 2}), 64).endswith("; 2 dropped: reply cut")


def test_datasets_has_no_drop_duplicates():
    ds = datasets.Dataset.from_dict({"text": ["a", "a", "b"]})
    with pytest.raises(AttributeError):
        ds.drop_duplicates("text")   # the seed's call, shown failing in notebook 04


def test_length_histograms_give_every_pool_its_own_non_empty_panel():
    rng = np.random.default_rng(0)
    lengths = {"cmath": rng.integers(40, 60, 50), "emoji": rng.integers(30, 900, 400), "json": rng.integers(40, 70, 300)}
    fig = report.plot_lengths(lengths)
    assert len(fig.axes) == len(lengths)
    for ax, (pool, values) in zip(fig.axes, lengths.items()):
        heights = [p.get_height() for p in ax.patches]
        assert ax.get_ylabel() == pool
        assert sum(heights) == len(values) and sum(h > 0 for h in heights) >= 2, pool


# ----------------------------------------------------------------------------- 00, 07
def test_course_versions_leave_out_the_test_tools():
    names = {r["package"] for r in environment.pinned_versions()}
    assert "transformers" in names and not names & set(environment.TEST_TOOLS)
    assert not [n for n in names if n.startswith(("pytest", "playwright"))], names
    assert set(environment.TEST_TOOLS) <= {r["package"] for r in environment.pinned_versions(test_tools=True)}


def test_pinned_versions_say_ok_differs_or_missing(tmp_path):
    import importlib.metadata as md

    have = md.version("numpy")
    req = tmp_path / "requirements.txt"
    req.write_text(f"numpy=={have}\npandas==0.0.1\nno-such-package-xyz==1.0\n# a comment\n")
    assert [r["status"] for r in environment.pinned_versions(req)] == ["ok", "differs", "MISSING"]


def test_only_missing_packages_stop_the_course(monkeypatch):
    rows = [{"package": "trl", "pinned": "1.15.0", "installed": "–", "status": "MISSING"},
            {"package": "torch", "pinned": "2.13.0", "installed": "2.11.0+cu130", "status": "differs"},
            {"package": "jupyterlab", "pinned": "4.6.6", "installed": "–", "status": "MISSING"}]
    monkeypatch.setattr(environment, "pinned_versions", lambda: rows)
    problems = environment.readiness("tiny-qwen3")
    assert problems[:1] == ["trl==1.15.0 is not installed: run `make install`"]
    assert not any("torch" in p or "jupyterlab" in p for p in problems)


def test_vllm_context_is_capped_at_the_models_positions_and_arguments_are_quoted(tmp_path):
    folder = tmp_path / "merged model"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"max_position_embeddings": 4096}))
    args = shlex.split(serve.vllm_merged_command(folder).replace("\\\n", " "))
    assert args[2] == str(folder) and args[args.index("--max-model-len") + 1] == "4096"
    lora = shlex.split(serve.vllm_lora_command("unsloth/Qwen3-4B-Instruct-2507", folder, "a b", positions=262144)
                       .replace("\\\n", " "))
    assert lora[lora.index("--max-model-len") + 1] == str(serve.SEED_FLAGS["max-model-len"])
    assert lora[lora.index("--lora-modules") + 1] == f"a b={folder}"


def test_notebook_05_length_data_count_the_tokens_of_each_sample(course_splits, tok):
    """The histogram's data: one chat-template token count per training sample, varied, as the model sees it."""
    from helpers.tool_schemas import tools_list

    train = course_splits["train"]
    lengths = report.token_lengths(train, tok, per_pool=len(train))
    flat = [int(n) for pool in lengths.values() for n in pool]
    assert len(flat) == len(train) and min(flat) > 10 and len(set(flat)) > 20
    row = train[0]
    messages = [{k: v for k, v in m.items() if v is not None} for m in row["messages"]]
    ids = tok.apply_chat_template(messages, tools=tools_list(row), tokenize=True, return_dict=True)["input_ids"]
    assert len(ids) in lengths[row["source"]]


def test_notebook_05_and_build_model_tune_unsloth_the_same_way():
    """The notebook writes out unsloth's calls; the course's changes after them are one shared function."""
    import inspect

    from helpers import train

    source = "".join(_source(c) for c in _cells("05") if c["cell_type"] == "code")
    assert "FastLanguageModel.get_peft_model(" in source and "train.tune_unsloth(model, cfg)" in source
    assert "tune_unsloth(model, cfg)" in inspect.getsource(train._build_unsloth)
    assert source.index("train.tune_unsloth(model, cfg)") < source.index("packed_attention.attention_route(path.name)")


# settings only the CLI needs: several processes, FSDP, and the data-loading defaults it spells out
CLI_ONLY = {"ddp_find_unused_parameters", "gradient_checkpointing_kwargs", "dataloader_num_workers", "dataset_num_proc"}


@pytest.mark.parametrize("preset", ["cpu-tiny", "gpu-16gb", "gpu-24gb", "gpu-80gb"])
@pytest.mark.parametrize("route", ["bnb-cpu", "bnb-cuda"])
def test_notebook_05_sft_config_matches_the_cli(preset, route, monkeypatch):
    """Notebook 05 writes out ``SFTConfig(...)``; ``python -m helpers.train`` builds it in ``train.sft_config``.
    Both must pass the same settings, so the notebook and the command it prints train the same run."""
    import ast

    from helpers import train

    cell = next(_source(c) for c in _cells("05") if "args = SFTConfig(" in _source(c))
    statements = [s for s in ast.parse(cell).body
                  if isinstance(s, ast.Assign) and s.targets[0].id in ("on_cpu", "args")]
    cfg = train.TrainConfig(**train.resolve_preset(preset, run="t"))
    namespace = {"cfg": cfg, "path": train.TrainPath(route, ""), "environment": environment,
                 "SFTConfig": lambda **kw: kw, "str": str}
    exec(compile(ast.Module(statements, []), "05_qlora_training", "exec"), namespace)
    monkeypatch.setattr(train, "SFTConfig", lambda **kw: kw)
    cli = train.sft_config(cfg, train.TrainPath(route, ""), has_eval=True)
    notebook = namespace["args"]
    assert {k: v for k, v in notebook.items() if k not in CLI_ONLY} == {
        k: v for k, v in cli.items() if k not in CLI_ONLY}
