"""helpers.viz: token-by-token mask pictures and the packing figure; the mask-explorer widget."""
import re

import matplotlib
import pytest

matplotlib.use("Agg")

from helpers import masks, packing, paths, templates, viz, widgets  # noqa: E402
from helpers.synthetic import synthetic_conversations  # noqa: E402

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def tool_sample(tok):
    row = templates.load_examples()["tool-0201"]
    return masks.build_labels(tok, row["messages"], row["tools"])


@pytest.mark.parametrize("text", ["你好 world 😊\n\n<|im_end|>", "naïve café — ½ ✅", "def f():\n    return {'a': 1}"])
def test_token_strings_join_to_the_decoded_text(tok, text):
    ids = tok(text, add_special_tokens=False)["input_ids"]
    pieces = viz.token_strings(tok, ids)
    assert len(pieces) == len(ids) and "".join(pieces) == tok.decode(ids)


def test_mask_html_one_box_per_token_coloured_by_label(tok, tool_sample):
    page = viz.mask_html(tok, tool_sample, title="tool call")
    boxes = re.findall(r"<span class='tok (trained|masked)' title='pos (\d+) · id (\d+) · ([\w:]+) · label (-?\d+)'", page)
    assert len(boxes) == len(tool_sample["input_ids"])
    assert [b[0] == "trained" for b in boxes] == [lab != -100 for lab in tool_sample["labels"]]
    assert [int(b[2]) for b in boxes] == tool_sample["input_ids"]
    assert [b[3] for b in boxes] == tool_sample["segments"]
    n_control = sum(t in tok.added_tokens_decoder for t in tool_sample["input_ids"])
    assert page.count(f"outline:1.5px solid {viz.CONTROL}'") == n_control
    n_trained = sum(lab != -100 for lab in tool_sample["labels"])
    assert f"<b>{n_trained} trained</b>" in page and "masked (-100)" in page and "tool call" in page


def test_mask_html_escapes_text_and_truncates(tok):
    row = [{"role": "user", "content": "<script>alert(1)</script>"}, {"role": "assistant", "content": "no"}]
    sample = masks.build_labels(tok, row)
    page = viz.mask_html(tok, sample, max_tokens=10)
    assert "<script" not in page and "&lt;script" in page
    assert page.count("class='tok ") == 10 and f"{len(sample['input_ids']) - 10} more tokens" in page
    with pytest.raises(ValueError, match="differ in length"):
        viz.mask_html(tok, {"input_ids": [1, 2], "labels": [1]})


def test_side_by_side_has_one_column_per_policy(tok):
    row = templates.load_examples()["sft-0103"]["messages"]
    versions = {p: masks.build_labels(tok, row, policy=p) for p in masks.POLICIES}
    page = viz.side_by_side_html(tok, versions)
    assert page.count("class='mask'") == 2
    counts = [int(n) for n in re.findall(r"<b>(\d+) trained</b>", page)]
    assert counts[0] > counts[1] > 0


def test_packed_html_marks_boundaries_and_positions(tok):
    samples = masks.build_many(tok, synthetic_conversations(12, seed=5))
    rows, _ = packing.pack(samples, max_length=200)
    row = max(rows, key=lambda r: len(r["seq_lengths"]))
    page = viz.packed_html(tok, row)
    assert page.count("border-left:3px solid #111") == len(row["seq_lengths"])
    assert re.findall(r"position_id (\d+)", page) == [str(p) for p in row["position_ids"]]


def test_plot_mask_draws_one_box_per_token(tok, tool_sample):
    fig = viz.plot_mask(tok, tool_sample, max_tokens=64)
    assert len(fig.axes[0].patches) == 64
    trained = [p for p in fig.axes[0].patches if matplotlib.colors.to_hex(p.get_facecolor()) == viz.TRAINED]
    assert len(trained) == sum(lab != -100 for lab in tool_sample["labels"][:64])


def test_plot_packing_draws_every_boundary(tok, tmp_path):
    samples = masks.build_many(tok, synthetic_conversations(10, seed=2))
    rows, _ = packing.pack(samples, max_length=300)
    fig = viz.plot_packing(rows)
    bars = [ln for ln in fig.axes[0].lines if ln.get_linewidth() == 2]
    assert len(bars) == sum(len(r["seq_lengths"]) for r in rows)
    fig.savefig(tmp_path / "p.png")
    assert (tmp_path / "p.png").read_bytes()[:8] == PNG_MAGIC


def test_committed_packing_figure_exists():
    data = (paths.PICS / "packing.png").read_bytes()
    assert data[:8] == PNG_MAGIC and len(data) > 20_000


def test_mask_explorer_redraws_without_a_kernel(tok, monkeypatch):
    import IPython.display

    shown = []
    monkeypatch.setattr(IPython.display, "display", lambda obj: shown.append(obj))
    examples = templates.load_examples()
    box = widgets.mask_explorer(tok, examples)
    pick, policy = box.children[0].children
    policy.value = "last_assistant"
    pick.value = "tool-0201"
    assert policy.options == masks.POLICIES and pick.value == "tool-0201"
    row = examples["tool-0201"]
    want = masks.build_labels(tok, row["messages"], row.get("tools"), policy="last_assistant")
    trained = sum(lab != masks.IGNORE_INDEX for lab in want["labels"])
    html = shown[-1].data   # what the widget drew last, for the choices just made
    assert f"<b>{trained} trained</b>" in html and "tool-0201" in html


def _drawn(fig) -> list[str]:
    return [t.get_text() for t in fig.axes[0].texts]


def test_plot_mask_draws_chinese_with_a_cjk_font_and_control_tokens_whole(tok, monkeypatch):
    row = [{"role": "user", "content": "你好"}, {"role": "assistant", "content": "好的"}]
    sample = masks.build_labels(tok, row)
    monkeypatch.setattr(viz, "cjk_font", lambda: "DejaVu Sans")   # any name: the choice of text is under test
    drawn = _drawn(viz.plot_mask(tok, sample))
    assert "你好" in drawn and "<|im_start|>" in drawn and "<|im_end|>" in drawn
    assert not any(t.startswith("#") for t in drawn)


def test_plot_mask_without_a_cjk_font_draws_ids_and_says_how_to_get_one(tok, monkeypatch):
    sample = masks.build_labels(tok, [{"role": "user", "content": "你好"}, {"role": "assistant", "content": "ok"}])
    monkeypatch.setattr(viz, "cjk_font", lambda: None)
    fig = viz.plot_mask(tok, sample)
    assert f"#{tok.convert_tokens_to_ids(tok.tokenize('你好')[0])}" in _drawn(fig)
    assert "fonts-wqy-microhei" in fig.axes[0].get_title()
