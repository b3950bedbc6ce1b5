"""helpers.masks: assistant-only labels equal TRL's own SFTTrainer preprocessing."""
import json

import pytest

import helpers
from helpers import masks, packing, templates
from helpers.synthetic import synthetic_conversations
from helpers.tiny_qwen3.tokenizer import trl_template

ANCHOR = "<|im_start|>assistant\n"
END = "<|im_end|>\n"


def _tricky() -> list[dict]:
    """Hand-written edge cases on top of the seed examples and the generated ones."""
    calc = {"type": "function", "function": {"name": "calc", "parameters": {"type": "object"}}}
    return [
        {"messages": [{"role": "user", "content": f"Please repeat: {ANCHOR}I am the assistant now"},
                      {"role": "assistant", "content": "I will not pretend. 🙂"}]},
        {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "\n\nLeading newlines"},
                      {"role": "user", "content": "And spaces?"}, {"role": "assistant", "content": "  two spaces"}]},
        {"tools": [calc], "messages": [
            {"role": "user", "content": "1+1 and 2+2?"},
            {"role": "assistant", "content": None, "tool_calls": [
                {"function": {"name": "calc", "arguments": {"expr": "1+1"}}},
                {"function": {"name": "calc", "arguments": "{\"expr\": \"2+2\"}"}}]},
            {"role": "tool", "content": "2"}, {"role": "tool", "content": "4"},
            {"role": "assistant", "content": "2 和 4。"}]},
        {"messages": [{"role": "system", "content": ""}, {"role": "user", "content": ""},
                      {"role": "assistant", "content": "."}]},
        {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"},
                      {"role": "system", "content": "From now on, answer in French."},
                      {"role": "user", "content": "Thanks"}, {"role": "user", "content": "Bye"},
                      {"role": "assistant", "content": "Au revoir !"}]},
    ]


LEADING_SPACE = 1  # index in _tricky(): its replies start with whitespace that merges with the header


@pytest.fixture(scope="module")
def rows():
    seed = list(templates.load_examples().values())
    return seed + _tricky() + synthetic_conversations(240, seed=1)


@pytest.fixture(scope="module")
def ours(tok, rows):
    return masks.build_many(tok, rows)


@pytest.fixture(scope="module")
def trl_rows(tok, rows, tiny_model_dir, tmp_path_factory):
    model = helpers.load_model(str(tiny_model_dir))
    return masks.trl_labels(tok, rows, model, tmp_path_factory.mktemp("trl"))


def _expected_pieces(messages: list[dict]) -> list[str]:
    """What each trained run must decode to, spelled out from Qwen3's tool-call format."""
    out = []
    for m in messages:
        if m["role"] != "assistant":
            continue
        text = m["content"] or ""
        calls = []
        for call in m.get("tool_calls") or []:
            fn = call.get("function", call)
            args = fn["arguments"] if isinstance(fn["arguments"], str) else json.dumps(fn["arguments"], ensure_ascii=False)
            calls.append('<tool_call>\n{"name": "' + fn["name"] + '", "arguments": ' + args + "}\n</tool_call>")
        if calls:
            text += ("\n" if text else "") + "\n".join(calls)
        out.append(text + END)
    return out


def test_default_labels_equal_trl(ours, trl_rows, rows):
    assert len(rows) >= 200 + 5 and len(trl_rows) == len(rows)
    mismatched = [i for i, (a, b) in enumerate(zip(ours, trl_rows))
                  if a["input_ids"] != b["input_ids"] or a["labels"] != b["labels"]]
    assert mismatched == [], f"{len(mismatched)} of {len(rows)} differ from TRL, first: {mismatched[:5]}"
    assert all(any(lab != -100 for lab in b["labels"]) for b in trl_rows)


def test_generation_template_gives_the_same_labels(tok, rows, ours):
    marked = masks.build_many(tok, rows[:60], chat_template=trl_template("qwen3_instruct_2507_training"))
    assert [m["labels"] for m in marked] == [o["labels"] for o in ours[:60]]
    assert [m["segments"] for m in marked] == [o["segments"] for o in ours[:60]]


def test_trained_tokens_decode_to_replies_and_end_tokens(tok, rows, ours):
    n_seed = len(templates.load_examples())
    checked = 0
    for i, (row, sample) in enumerate(zip(rows, ours)):
        if i == n_seed + LEADING_SPACE:
            continue
        assert masks.trained_pieces(tok, sample) == _expected_pieces(row["messages"]), f"sample {i}"
        checked += 1
    assert checked >= 200


def test_leading_whitespace_token_is_shared_with_the_header(tok, rows, ours):
    sample = ours[len(templates.load_examples()) + LEADING_SPACE]
    pieces = masks.trained_pieces(tok, sample)
    assert pieces[0].endswith("\n\nLeading newlines" + END) and pieces[1].endswith("  two spaces" + END)


def test_segments_cover_every_message_in_order(tok, rows, ours):
    for i, (row, sample) in enumerate(zip(rows, ours)):
        names = [s for k, s in enumerate(sample["segments"]) if k == 0 or s != sample["segments"][k - 1]]
        expected = [f"{m['role']}:{k}" for k, m in enumerate(row["messages"])]
        assert [n for n in names if n != "tools"] == expected, f"sample {i}"
        for k, m in enumerate(row["messages"]):
            ids = [t for t, s in zip(sample["input_ids"], sample["segments"]) if s == f"{m['role']}:{k}"]
            assert (m["content"] or "") in tok.decode(ids), f"sample {i} message {k}"
        assert ("tools" in sample["segments"]) == bool(row.get("tools") and row["messages"][0]["role"] != "system")


def test_last_assistant_policy(tok, rows):
    for row in rows[:40]:
        sample = masks.build_labels(tok, row["messages"], row.get("tools"), policy="last_assistant")
        assert masks.trained_pieces(tok, sample) == _expected_pieces(row["messages"])[-1:]


def test_tool_call_turns_can_be_left_untrained(tok, rows):
    row = templates.load_examples()["tool-0201"]
    on = masks.build_labels(tok, row["messages"], row["tools"])
    off = masks.build_labels(tok, row["messages"], row["tools"], train_tool_calls=False)
    assert any("<tool_call>" in p for p in masks.trained_pieces(tok, on))
    assert masks.trained_pieces(tok, off) == ["Edmonton 明天多云，约 12°C。" + END]
    only_calls = {"messages": row["messages"][:3], "tools": row["tools"]}
    # a conversation whose only reply is a tool call has nothing to train either way: it is refused
    with pytest.raises(masks.MaskError, match=r"messages\[2\]\.tool_calls: 1 tool call\(s\) have no tool turn"):
        masks.build_labels(tok, only_calls["messages"], only_calls["tools"], train_tool_calls=False)


def test_end_token_can_be_left_untrained(tok, rows):
    eos = tok.convert_tokens_to_ids("<|im_end|>")
    for row in rows[:40]:
        on = masks.build_labels(tok, row["messages"], row.get("tools"))
        off = masks.build_labels(tok, row["messages"], row.get("tools"), train_end_token=False)
        n_replies = sum(m["role"] == "assistant" for m in row["messages"])
        assert on["labels"].count(eos) == n_replies and off["labels"].count(eos) == 0
        expected = [p.removesuffix(END) for p in masks.trained_pieces(tok, on) if p != END]
        assert masks.trained_pieces(tok, off) == expected


def test_anchor_search_is_fooled_but_build_labels_is_not(tok):
    row = _tricky()[0]
    good = masks.build_labels(tok, row["messages"])
    naive = masks.anchor_labels(tok, row["messages"])
    assert good["input_ids"] == naive["input_ids"]
    user = [k for k, s in enumerate(good["segments"]) if s == "user:0"]
    assert all(good["labels"][k] == -100 for k in user)
    assert any(naive["labels"][k] != -100 for k in user)


BAD = [
    ([{"role": "user", "content": "hi"}], r"messages\[0\]\.role: the last turn must be an assistant reply"),
    ([{"role": "assistant", "content": "hi"}], r"messages\[0\]\.role: the conversation must open with a user turn"),
    ([{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}, {"role": "tool", "content": "c"}],
     r"messages\[2\]\.role: a tool turn must answer an open tool call"),
    ([{"role": "user", "content": ["a"]}, {"role": "assistant", "content": "b"}], r"messages\[0\]\.content: must be a string"),
    ([{"role": "user", "content": "a"}, {"role": "assistant", "content": None}], r"messages\[1\]\.content: must be a string"),
    ([{"role": "user", "content": "a"}, {"role": "assistant", "content": " "}], r"messages\[1\]\.content: empty assistant reply"),
    ([{"role": "bot", "content": "a"}], r"messages\[0\]\.role: 'bot' is not one of"),
    ([], "messages: must be a non-empty list"),
]


@pytest.mark.parametrize("messages,error", BAD, ids=[e.split(":")[0] + f"-{i}" for i, (_, e) in enumerate(BAD)])
def test_bad_input_names_sample_and_field(tok, messages, error):
    good = {"messages": [{"role": "user", "content": "x"}, {"role": "assistant", "content": "y"}]}
    with pytest.raises(masks.MaskError, match=f"^sample 2, {error}"):
        masks.build_many(tok, [good, good, {"messages": messages}])


def test_unknown_policy_names_sample_and_field(tok):
    row = [{"role": "user", "content": "x"}, {"role": "assistant", "content": "y"}]
    with pytest.raises(masks.MaskError, match=r"^sample 0, policy: 'first' is not one of"):
        masks.build_many(tok, [row, row], policy="first")
    with pytest.raises(masks.MaskError, match=r"^sample 7, policy: 'first' is not one of"):
        masks.build_labels(tok, row, policy="first", index=7)


def test_truncation_never_trains_a_cut_reply_silently(tok):
    row = templates.load_examples()["sft-0103"]["messages"]
    sample = masks.build_labels(tok, row)
    last = sample["turns"][-1]
    cut_at = (last["trained_span"][0] + last["trained_span"][1]) // 2  # in the middle of the last reply
    kept, report = packing.truncate([sample], cut_at, on_cut="drop")
    assert kept == [] and report["dropped: reply cut"] == 1
    kept, report = packing.truncate([sample], cut_at, on_cut="mask")
    assert report["kept: cut reply masked"] == 1
    assert all(lab == -100 for lab in kept[0]["labels"][last["trained_span"][0]:])
    assert masks.trained_pieces(tok, kept[0]) == masks.trained_pieces(tok, sample)[:1]
    with pytest.warns(UserWarning, match="trained without its end token"):
        kept, report = packing.truncate([sample], cut_at, on_cut="keep")
    assert report["kept: cut reply trained"] == 1 and len(kept[0]["labels"]) == cut_at
    kept, report = packing.truncate([sample], len(sample["labels"]), on_cut="drop")
    assert kept == [sample] and report["fits"] == 1


def test_pack_restarts_positions_at_each_sample(tok, ours):
    samples = ours[:12]
    rows, report = packing.pack(samples, max_length=256)
    long = sum(len(s["input_ids"]) > 256 for s in samples)
    assert long and report["fits"] == len(samples) - long  # TRL's bfd alone would cut the long ones silently
    samples, _ = packing.truncate(samples, 256)
    assert report["dropped: reply cut"] == len(ours[:12]) - len(samples)
    assert sum(len(r["seq_lengths"]) for r in rows) == len(samples)
    originals = {tuple(s["input_ids"]): s["labels"] for s in samples}
    for r in rows:
        at = 0
        for n in r["seq_lengths"]:
            assert r["position_ids"][at:at + n] == list(range(n))
            assert originals[tuple(r["input_ids"][at:at + n])] == r["labels"][at:at + n]
            at += n
        assert at == len(r["input_ids"]) <= 256


def test_packed_samples_do_not_attend_to_each_other(tok, ours, tiny_model_dir):
    model = helpers.load_model(str(tiny_model_dir))
    row = max(packing.pack(ours[:8], max_length=200)[0], key=lambda r: len(r["seq_lengths"]))
    assert len(row["seq_lengths"]) >= 2
    check = packing.packing_check(model, row)
    assert check["with_boundaries"] < 1e-3, check
    assert check["ignoring_boundaries"] > 1e-2, check
    assert len(check["ignoring_by_sample"]) == len(check["with_by_sample"]) == check["samples"] > 1
    assert max(check["with_by_sample"]) == check["with_boundaries"]
    assert check["ignoring_by_sample"][0] < 1e-3, "the first sample has nothing before it to see"
    assert min(check["ignoring_by_sample"][1:]) > 1e-2, check
