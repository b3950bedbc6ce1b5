"""helpers.data: normalisers, cleaning, dedup, weights, mixing, split, export, validation."""
import json
import subprocess
import sys
import warnings

import datasets
import pytest

from helpers import data, paths, synthetic
from helpers.data.report import validate
from helpers.data.sources import (clean_text, column, format_number, normalize_chat,
                                  normalize_cmath, normalize_emoji, normalize_mawps)
from tools import make_samples

datasets.disable_progress_bars()


def write(path, lines):
    path.write_text("".join(lines), encoding="utf-8")
    return path


def jsonl(path, rows):
    return write(path, [json.dumps(r, ensure_ascii=False) + "\n" for r in rows])


def pool(name, n, start=0):
    """A pool of ``n`` distinct rows in the course schema."""
    rows = [{"id": f"{name}-{i}", "messages": [{"role": "user", "content": f"{name} q{i}"},
                                                {"role": "assistant", "content": f"a{i}"}]} for i in range(start, start + n)]
    ds = datasets.Dataset.from_list([{**r, "tags": []} for r in rows])
    ds = ds.map(lambda b: {"messages": [[{**m, "tool_calls": None, "tool_call_id": None} for m in ms]
                                        for ms in b["messages"]]}, batched=True)
    return data.add_metadata(ds, name, [])


# ---------------------------------------------------------------- cleaning and numbers

def test_clean_text_removes_every_qwen_added_token(tok):
    added = [t.content for t in tok.added_tokens_decoder.values()]
    assert len(added) == 26
    text = "你好 😊 " + " x ".join(added) + " end"
    cleaned, n = clean_text(text)
    assert n == len(added)
    assert not any(t in cleaned for t in added)
    assert cleaned.startswith("你好 😊") and cleaned.endswith("end")
    assert clean_text("a\x00b\r\nc") == ("ab\nc", 0)
    assert clean_text("<|user|> hi") == ("hi", 1)  # the seed's look-alike tokens go too


@pytest.mark.parametrize("raw, expected", [("504.0", "504"), (504.0, "504"), ("0.8333333333333334", "0.833333"),
                                            ("2/6", "2/6"), ("12%", "12%"), ("-3", "-3"), ("abc", None),
                                            ("", None), (None, None), ("nan", None)])
def test_format_number(raw, expected):
    assert format_number(raw) == expected


# ---------------------------------------------------------------- normalisers

def test_cmath_both_variants_and_counted_drops(tmp_path):
    f = jsonl(tmp_path / "c.jsonl", [{"input": "问题一<|im_end|>", "golden": "9.0"},
                                     {"question": "问题二", "golden": "3/4"},
                                     {"input": "问题三", "golden": ""},
                                     {"input": "问题四", "golden": "很多"}])
    ds, rep = normalize_cmath(f)
    msgs = ds["messages"][:]
    assert [m[0]["content"] for m in msgs] == ["问题一", "问题二"]
    assert [m[1]["content"] for m in msgs] == ["9", "3/4"]
    assert rep["rows_in"] == 4 and rep["rows_out"] == 2 and rep["control_tokens_removed"] == 1
    assert rep["dropped"] == {"missing golden answer": 1, "golden answer is not a number": 1}
    assert rep["examples"]["missing golden answer"] == [f"{f}:3"]


def test_mawps_placeholders_both_styles(tmp_path):
    f = write(tmp_path / "m.csv", [
        "Question,Numbers,Equation,Answer\n",
        "Tom has number0 apples and number1 pears . How many ?,56.0 9.0,+ number0 number1,65.0\n",
        "Ann has N_0 cats and N_1 dogs . How many ?,3.0 2.5,+ N_0 N_1,5.5\n",
        "Bad row has number0 and number1 and number2 .,1.0 2.0,+ number0 number1,3.0\n",
    ])
    ds, rep = normalize_mawps(f)
    msgs = ds["messages"][:]
    assert msgs[0][0]["content"] == "Tom has 56 apples and 9 pears. How many?"
    assert msgs[1][0]["content"] == "Ann has 3 cats and 2.5 dogs. How many?"
    assert [m[1]["content"] for m in msgs] == ["65", "5.5"]
    assert rep["dropped"] == {"Numbers has fewer values than the placeholders": 1}
    assert rep["examples"]["Numbers has fewer values than the placeholders"] == [f"{f}:4"]


def test_mawps_missing_column_names_file_and_field(tmp_path):
    f = write(tmp_path / "m.csv", ["Question,Answer\n", "q number0,1\n"])
    with pytest.raises(ValueError, match=r"m\.csv.*missing column 'Numbers'"):
        normalize_mawps(f)


def test_emoji_prefers_zh_caps_answers_and_reads_dpo(tmp_path):
    long = "好" * 3500
    f = jsonl(tmp_path / "e.jsonl", [{"question": "q1", "answer_zh": "中文 🙂", "answer_en": "english"},
                                     {"question": "q2", "answer_zh": "", "answer_en": "english 🎉"},
                                     {"question": "q3", "answer_zh": long, "answer_en": ""}])
    ds, rep = normalize_emoji(f)
    replies = [m[1]["content"] for m in ds["messages"][:]]
    assert replies[:2] == ["中文 🙂", "english 🎉"]
    assert len(replies[2]) == 3000 and rep["answers_capped"] == 1
    g = jsonl(tmp_path / "d.jsonl", [
        {"prompt": "p1", "chosen": [{"role": "assistant", "content": "c1"}], "rejected": []},
        {"prompt": "p2", "chosen": [{"role": "user", "content": "p2"}, {"role": "assistant", "content": "c2"}],
         "rejected": []},
        {"prompt": "p3", "chosen": [], "rejected": []}])
    ds, rep = normalize_emoji(g)
    assert [[(m["role"], m["content"]) for m in ms] for ms in ds["messages"][:]] == [
        [("user", "p1"), ("assistant", "c1")], [("user", "p2"), ("assistant", "c2")]]
    assert rep["dropped"] == {"empty chosen": 1}


def test_malformed_jsonl_names_file_and_line(tmp_path):
    f = write(tmp_path / "bad.jsonl", ['{"input": "a", "golden": "1"}\n', '{"input": "b", golden: 2}\n'])
    with pytest.raises(ValueError, match=r"bad\.jsonl:2: malformed JSON"):
        normalize_cmath(f)


def test_drop_reports_name_the_physical_line(tmp_path):
    """Blank lines in JSONL and quoted line breaks in CSV move rows down; the report must follow."""
    from helpers.data.sources import normalize_emoji

    (tmp_path / "b.jsonl").write_text('{"question":"q","answer_zh":"a"}\n\n{"question":"","answer_zh":"a"}\n')
    _, rep = normalize_emoji(tmp_path / "b.jsonl")
    assert rep["examples"] == {"missing question": [f"{tmp_path}/b.jsonl:3"]}
    (tmp_path / "m.csv").write_text('Question,Numbers,Equation,Answer\n"two\nlines number0",3.0,x,3\n'
                                    '"q number0",1.0,x,1\nshort row\n"bad",1.0,x,abc\n')
    _, rep = normalize_mawps(tmp_path / "m.csv")
    assert rep["examples"] == {"missing Answer": [f"{tmp_path}/m.csv:5"],
                               "Answer is not a number": [f"{tmp_path}/m.csv:6"]}


def test_empty_file_and_missing_file(tmp_path):
    with pytest.raises(ValueError, match="empty"):
        normalize_cmath(write(tmp_path / "empty.jsonl", []))
    with pytest.raises(FileNotFoundError, match="nope.jsonl"):
        normalize_cmath(tmp_path / "nope.jsonl")


def test_hub_path_fails_clearly_offline():
    with pytest.raises(ConnectionError, match="Offline\\?"):
        normalize_emoji(hub=True)


def test_chat_rows_keep_tool_calls_and_tools_as_json_strings(tmp_path):
    row = synthetic.tool_row(__import__("random").Random(0), 0)
    row["messages"][1]["tool_calls"][0]["function"]["arguments"] = {"city": "Paris", "day": "today"}
    ds, rep = normalize_chat(jsonl(tmp_path / "t.jsonl", [row]), "tool")
    call = ds["messages"][0][1]["tool_calls"][0]
    assert json.loads(call["function"]["arguments"]) == {"city": "Paris", "day": "today"}
    assert json.loads(ds["tools"][0]) == [synthetic.WEATHER_TOOL]
    assert ds["tags"][0] == ["tool-call", "en"] and rep["rows_out"] == 1


def test_step1_drops_what_the_conversation_rules_refuse_and_counts_it(tmp_path):
    q = {"role": "user", "content": "q"}
    rows = [{"id": "ok", "messages": [q, {"role": "assistant", "content": "a"}]},
            {"id": "empty", "messages": [q, {"role": "assistant", "content": "  "}]},
            {"id": "stray", "messages": [q, {"role": "assistant", "content": "a"}, {"role": "tool", "content": "x"},
                                         {"role": "assistant", "content": "b"}]},
            {"id": "ends-on-user", "messages": [q, {"role": "assistant", "content": "a"}, q]}]
    ds, rep = normalize_chat(jsonl(tmp_path / "c.jsonl", rows), "json")
    assert ds["id"][:] == ["ok"] and rep["rows_in"] == rep["rows_out"] + sum(rep["dropped"].values())
    assert rep["dropped"] == {
        "messages[1].content: empty assistant reply": 1,
        "messages[2].role: a tool turn must answer an open tool call of the assistant turn before it": 1,
        "messages[2].role: the last turn must be an assistant reply, got 'user'": 1}
    assert rep["examples"]["messages[1].content: empty assistant reply"] == [f"{tmp_path / 'c.jsonl'}:2"]


def test_tools_of_other_shapes_keep_their_own_fields_and_bad_tools_are_counted(tmp_path):
    talk = [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]
    other = {"type": "function", "function": {"name": "add", "parameters": {"type": "object", "properties": {
        "x": {"type": "number"}}}}}
    rows = [{"id": "w", "messages": talk, "tools": [synthetic.WEATHER_TOOL]},
            {"id": "a", "messages": talk, "tools": [other]},
            {"id": "n", "messages": talk}]
    ds, rep = normalize_chat(jsonl(tmp_path / "t.jsonl", rows), "tool")
    # Arrow unifies the two schemas into one struct; the text keeps each row's own fields only
    assert [json.loads(t) if t else t for t in ds["tools"][:]] == [[synthetic.WEATHER_TOOL], [other], None]
    as_text = [{"id": "s", "messages": talk, "tools": json.dumps([other])},  # JSON text is accepted too
               {"id": "bad", "messages": talk, "tools": "[1, 2]"}]
    text_ds, text_rep = normalize_chat(jsonl(tmp_path / "s.jsonl", as_text), "tool")
    assert json.loads(text_ds["tools"][0]) == [other] and len(text_ds) == 1
    reason = "tools: must be a list of tool schemas (JSON objects)"
    assert text_rep["dropped"] == {reason: 1} and text_rep["examples"][reason][0].endswith("s.jsonl:2")
    same_talk, _ = data.dedup(data.add_metadata(ds, "tool", []))
    assert len(same_talk) == 3  # equal messages, other tools: different samples


# ---------------------------------------------------------------- weights

def test_normalize_weights():
    assert data.normalize_weights({"a": 4, "b": 3, "c": 3}, "abc") == pytest.approx({"a": 0.4, "b": 0.3, "c": 0.3})
    assert data.normalize_weights({"a": 0, "b": 0}, "ab") == {"a": 0.5, "b": 0.5}
    assert data.normalize_weights(None, "abc") == pytest.approx({p: 1 / 3 for p in "abc"})
    for bad, name in (({"a": -1}, "'a'"), ({"a": float("nan")}, "'a'"), ({"zz": 1}, "'zz'"), ({"a": "1"}, "'a'")):
        with pytest.raises(ValueError, match=name):
            data.normalize_weights(bad, "ab")
    with pytest.warns(UserWarning, match="'b'"):
        assert data.normalize_weights({"a": 2}, "ab") == {"a": 1.0, "b": 0.0}


# ---------------------------------------------------------------- dedup

def test_dedup_keeps_first_and_is_the_same_with_num_proc():
    ds = datasets.concatenate_datasets([pool("x", 40), pool("x", 20, start=10), pool("x", 5)])
    one, removed = data.dedup(ds)
    assert removed == 25 and len(one) == 40
    assert one["id"][:] == [f"x-{i}" for i in range(40)]
    two, _ = data.dedup(ds, num_proc=2)
    assert two["id"][:] == one["id"][:]


def test_final_dedup_drops_cross_pool_copies_but_keeps_resample_copies():
    a, b = pool("a", 5), pool("b", 5)
    same = b.map(lambda r: {"messages": a[0]["messages"]} if r["id"] == "b-2" else {})
    mixed = datasets.concatenate_datasets([a, a.select([1, 1]), same])
    out, removed = data.final_dedup(mixed)
    assert removed == 1 and "b-2" not in out["id"][:]
    assert out["id"][:].count("a-1") == 3


# ---------------------------------------------------------------- mixing

def test_interleave_never_repeats_and_drifts_when_a_pool_runs_out():
    pools = {"big": pool("big", 300), "small": pool("small", 20)}
    mixed, rep = data.interleave_mix(pools, {"big": 1, "small": 1}, seed=1, total_size=200)
    ids = mixed["id"][:]
    assert len(ids) == len(set(ids)) == 200
    small = rep["pools"]["small"]
    assert small["rows"] == 20 and small["ran_out_at_row"] is not None and small["ran_out_at_row"] < 200
    assert small["requested"] == 0.5 and small["realised"] == 0.1
    everything, rep = data.interleave_mix(pools, {"big": 1, "small": 1}, seed=1, total_size=10_000)
    assert len(everything) == 320 and rep["rows"] == 320


def test_interleave_default_size_and_zero_weight_pool():
    pools = {"a": pool("a", 100), "b": pool("b", 100), "c": pool("c", 50)}
    mixed, rep = data.interleave_mix(pools, {"a": 1, "b": 1, "c": 0}, seed=0)
    assert len(mixed) == int(0.9 * 200) and rep["pools"]["c"]["rows"] == 0


def test_resample_hits_exact_counts_with_replacement():
    pools = {"a": pool("a", 10), "b": pool("b", 200)}
    mixed, rep = data.resample_mix(pools, {"a": 0.5, "b": 0.5}, seed=3)
    assert len(mixed) == int(0.9 * 210)
    assert rep["pools"]["a"]["rows"] == rep["pools"]["b"]["rows"] + 1  # 189 rows: largest remainder
    assert rep["pools"]["a"]["unique"] <= 10
    kept, removed = data.final_dedup(mixed)
    assert removed == 0 and len(kept) == len(mixed)


def test_mix_errors():
    pools = {"a": pool("a", 10), "empty": pool("a", 0)}
    with pytest.raises(ValueError, match="'empty' is empty"):
        data.interleave_mix(pools, {"a": 1, "empty": 1})
    with pytest.raises(ValueError, match="unknown strategy 'zip'"):
        data.mix(pools, {"a": 1}, strategy="zip")
    with pytest.raises(ValueError, match="unknown strategy"):
        data.Pipeline(strategy="zip")


# ---------------------------------------------------------------- split

def test_split_floor_stratified_and_copies_on_one_side():
    pools = {"a": pool("a", 600), "b": pool("b", 400)}
    mixed, _ = data.resample_mix(pools, {"a": 1, "b": 1}, seed=0, total_size=1500)
    splits, info = data.split_train_valid(mixed, valid_ratio=0.02, seed=0)
    val, train = splits["validation"], splits["train"]
    assert info["valid_samples"] == 100 == len(val)
    assert not set(val["id"][:]) & set(train["id"][:])
    assert len(set(val["id"][:])) == len(val)
    assert len(train) + len(val) + info["copies_kept_out_of_validation"] == len(mixed)
    share_a = sum(s == "a" for s in val["source"][:]) / len(val)
    uniq = set(zip(mixed["id"][:], mixed["source"][:]))
    assert abs(share_a - sum(s == "a" for _, s in uniq) / len(uniq)) <= 0.011


def test_split_tiny_set_never_empties_train():
    splits, info = data.split_train_valid(pool("a", 120), valid_ratio=0.1, seed=0)
    assert len(splits["validation"]) == 60 and len(splits["train"]) == 60
    with pytest.raises(ValueError, match="at least 2"):
        data.split_train_valid(pool("a", 1))
    with pytest.raises(ValueError, match="valid_ratio"):
        data.split_train_valid(pool("a", 10), valid_ratio=1.5)


# ---------------------------------------------------------------- validation

def test_validate_names_line_and_id(tmp_path):
    f = jsonl(tmp_path / "v.jsonl", [{"id": "ok", "messages": [{"role": "user", "content": "q"},
                                                               {"role": "assistant", "content": "a"}]},
                                     {"id": "bad", "messages": [{"role": "user", "content": "q"}]}])
    assert validate(f) == ["v.jsonl:2 id=bad: messages[0].role: the last turn must be an assistant reply, got 'user'"]


# ---------------------------------------------------------------- the sample files

def test_committed_samples_are_what_the_generator_writes(tmp_path):
    counts = make_samples.write_samples(tmp_path)
    for name in counts:
        assert (tmp_path / name).read_bytes() == (paths.DATA / name).read_bytes(), name
    rows = [json.loads(line) for line in (tmp_path / "json_strict.jsonl").open(encoding="utf-8")]
    json_rows = [r for r in rows if r["tags"] == ["json-only", "strict"]]
    negatives = [r for r in rows if r["tags"][0] == "json-negative"]
    assert len(json_rows) >= 250 and len(negatives) >= 20 and len(json_rows) + len(negatives) == len(rows)
    for row in json_rows:
        obj = json.loads(row["messages"][1]["content"])
        assert 2 <= len(obj) <= 4
        assert all(f"{k}=" in row["messages"][0]["content"] for k in obj)
    for row in negatives:  # JSON in the prompt, a plain sentence naming every key in the reply
        obj = json.loads(row["messages"][0]["content"][row["messages"][0]["content"].index("{"):].split("}")[0] + "}")
        reply = row["messages"][1]["content"]
        assert "{" not in reply and all(k in reply.lower() for k in obj)
    assert any("仅" in r["messages"][0]["content"] for r in json_rows)
    assert any("Output only" in r["messages"][0]["content"] for r in json_rows)


def test_every_step_does_something_on_the_samples(built):
    report = built["report"]
    reasons = {(d["step"], d["pool"]) for d in report["dropped"]}
    for pool_name in ("cmath", "mawps", "emoji"):
        assert ("normalize", pool_name) in reasons and ("dedup", pool_name) in reasons
        assert report["cleaning"][pool_name]["control_tokens_removed"] > 0
    assert report["cleaning"]["emoji"]["answers_capped"] > 0
    assert any(d["step"] == "final_dedup" for d in report["dropped"])
    steps = report["steps"]
    for p in data.sources.POOLS:  # rows in = rows out + counted drops, at every step
        drops = {s: sum(d["rows"] for d in report["dropped"] if d["pool"] == p and d["step"] == s) for s in
                 ("normalize", "dedup", "final_dedup")}
        assert steps["raw"][p] == steps["normalize"][p] + drops["normalize"]
        assert steps["metadata"][p] - drops["dedup"] == steps["dedup"][p]
        assert steps["mix"][p] - drops["final_dedup"] == steps["final_dedup"][p]
        assert steps["train"][p] + steps["validation"][p] == steps["final_dedup"][p]


def test_dedup_drops_name_the_rows_they_removed(built):
    out = built["out"] / "a"
    pool_ids = {p: set(ds["id"]) for p, ds in data.load_pools(out / "normalized").items()}
    split_ids = {i for ds in data.load_splits(out).values() for i in ds["id"]}
    dedups = [d for d in built["report"]["dropped"] if d["step"] in ("dedup", "final_dedup")]
    assert {d["step"] for d in dedups} == {"dedup", "final_dedup"}
    for d in dedups:
        kept = pool_ids[d["pool"]] if d["step"] == "dedup" else split_ids
        assert len(d["examples"]) == min(d["rows"], data.sources.EXAMPLES), d
        assert all(i.startswith(f"{d['pool']}-") and i not in kept for i in d["examples"]), d


# ---------------------------------------------------------------- build, export, determinism

@pytest.fixture(scope="module")
def built(tmp_path_factory):
    out = tmp_path_factory.mktemp("built")
    report = data.build(out / "a", tokenizer=None, seed=7)
    return {"out": out, "report": report}


def test_build_exports_valid_splits_with_json_rows(built):
    out = built["out"] / "a"
    splits = data.load_splits(out)
    assert set(splits) == {"train", "validation"}
    assert set(splits["train"].column_names) == {"id", "messages", "source", "tags", "tools"}
    rows = splits["train"].select_columns(["tags", "tools"]).to_list()
    assert {r["tools"] is not None for r in rows if "tool-call" in r["tags"]} == {True}
    assert {r["tools"] for r in rows if "tool-call" not in r["tags"]} == {None}
    assert {r["tools"] for r in rows if r["tools"]} == {json.dumps([synthetic.WEATHER_TOOL], ensure_ascii=False)}
    assert validate(out / "train.jsonl") == [] and validate(out / "val.jsonl") == []
    json_val = sum("json-only" in t for t in splits["validation"]["tags"][:])
    assert json_val >= 30 and built["report"]["json_rows_in_validation"] == json_val
    jsonl_rows = [json.loads(line) for line in (out / "val.jsonl").open(encoding="utf-8")]
    present = [[{k: v for k, v in m.items() if v is not None} for m in ms] for ms in splits["validation"]["messages"][:]]
    assert [r["messages"] for r in jsonl_rows] == present  # the schema's empty keys are not written
    assert any("tool_calls" in m for r in jsonl_rows for m in r["messages"])
    text = (out / "train.jsonl").read_text(encoding="utf-8")
    assert "\\u" not in text and any(ch in text for ch in "你好吗") and "✨" in text


def test_same_seed_same_bytes_other_seed_other_order(built, tmp_path):
    data.build(tmp_path / "b", tokenizer=None, seed=7)
    data.build(tmp_path / "c", tokenizer=None, seed=8)
    a = (built["out"] / "a" / "train.jsonl").read_bytes()
    assert (tmp_path / "b" / "train.jsonl").read_bytes() == a
    assert (tmp_path / "b" / "val.jsonl").read_bytes() == (built["out"] / "a" / "val.jsonl").read_bytes()
    assert (tmp_path / "c" / "train.jsonl").read_bytes() != a


def test_load_splits_only_reads_and_ensure_built_says_when_it_builds(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"no dataset at .*new.*python -m helpers\.data --out"):
        data.load_splits(tmp_path / "new")
    assert not (tmp_path / "new").exists()
    said = []
    assert data.ensure_built(tmp_path / "new", log=said.append) is True
    assert "building it from data/ with the default weights" in said[0]
    splits = data.load_splits(tmp_path / "new")
    assert (tmp_path / "new" / "train.jsonl").is_file() and len(splits["validation"]) >= 100
    assert data.ensure_built(tmp_path / "new", log=said.append) is False and len(said) == 1


def test_module_command_line_runs():
    done = subprocess.run([sys.executable, "-m", "helpers.data", "--help"], capture_output=True, text=True)
    assert done.returncode == 0 and "--strategy" in done.stdout


def test_token_stats_and_report_json(built, tok):
    pipe = data.Pipeline(out_dir=built["out"] / "tok", seed=7)
    for step in ("normalize", "add_metadata", "dedup", "mix", "final_dedup", "split"):
        getattr(pipe, step)()
    lengths = pipe.token_stats(tok, per_pool=20)
    assert set(lengths) == set(data.sources.POOLS) and all(len(v) == 20 for v in lengths.values())
    stats = pipe.report["token_lengths"]["json"]
    assert 20 < stats["p50"] <= stats["p95"] <= stats["max"] < 200  # a short prompt + a small object
    saved = json.loads(pipe.save_report().read_text(encoding="utf-8"))
    assert saved["token_lengths"]["json"]["n"] == 20 and saved["steps"]["validation"]["json"] > 0


def test_column_helper_matches_python_access():
    ds = pool("a", 5).shuffle(seed=0)
    assert column(ds, "id").tolist() == ds["id"][:]


def test_build_prints_its_report_and_keeps_a_length_histogram(tmp_path, capsys):
    assert data.pipeline.main(["--out", str(tmp_path / "built")]) == 0
    out = capsys.readouterr().out
    for title in ("rows per pool after each step", "drops", "mix: requested vs realised", "token lengths"):
        assert title in out
    report = json.loads((tmp_path / "built" / "report.json").read_text())
    hist = report["token_length_histogram"]
    assert len(hist["edges"]) == 30 and set(hist["counts"]) == set(report["token_lengths"])
    for pool, counts in hist["counts"].items():
        assert len(counts) == 29 and sum(counts) == report["token_lengths"][pool]["n"], pool


def test_length_report_counts_truncation(tok):
    long = {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "word " * 400}]}
    lost = {"messages": [{"role": "user", "content": "x " * 400}, {"role": "assistant", "content": "ok"}]}
    short = {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]}
    with pytest.warns(UserWarning, match="longer than max_length"):
        rep = data.report.length_report([long, lost, short], tok, max_length=64)
    assert (rep["samples"], rep["longer_than_max_length"], rep["left_with_no_trained_tokens"]) == (3, 2, 1)
    assert rep["assistant_tokens_cut"] > 300
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert data.report.length_report([short], tok, max_length=64)["longer_than_max_length"] == 0
