"""Pictures of loss masks and packing (notebook 03).

HTML for notebooks (``show_mask``, ``show_side_by_side``, ``show_packed``): one box per
token, green when trained, grey when masked, control tokens outlined, a coloured
underline per role, hover for position / id / label. Matplotlib for static figures
(``plot_mask``, ``plot_packing``). ``python -m helpers.viz`` redraws ``pics/packing.png``.
"""
from __future__ import annotations

import codecs
import html
from collections import Counter
from pathlib import Path

from . import masks, packing, paths
from .models import load_tokenizer
from .synthetic import synthetic_conversations

IGNORE_INDEX = -100
TRAINED, MASKED, CONTROL = "#bbf7d0", "#e5e7eb", "#b91c1c"
ROLE_LINE = {"system": "#9ca3af", "user": "#3b82f6", "assistant": "#16a34a", "tool": "#d97706", "tools": "#9ca3af"}
SAMPLE_COLOURS = ["#60a5fa", "#f59e0b", "#34d399", "#f472b6", "#a78bfa", "#fb7185", "#2dd4bf", "#facc15"]


def token_strings(tokenizer, ids: list[int]) -> list[str]:
    """The text each token completes (a CJK character split over two tokens shows on the second).

    Joined, the strings give back the decoded text.
    """
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    to_byte = {c: b for b, c in bytes_to_unicode().items()}
    added = {i: t.content for i, t in tokenizer.added_tokens_decoder.items()}
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    out = []
    for tid, piece in zip(ids, tokenizer.convert_ids_to_tokens(ids)):
        if tid in added:
            out.append(decoder.decode(b"", final=True) + added[tid])
        else:
            out.append(decoder.decode(bytes(to_byte.get(c, 63) for c in piece)))
    if out:
        out[-1] += decoder.decode(b"", final=True)
    return out


def _shown(text: str) -> str:
    """HTML for one token's text: newlines as ↵ plus a line break, an empty piece as ▫."""
    if text == "":
        return "<span style='color:#9ca3af'>▫</span>"
    return html.escape(text).replace("\n", "↵<br>")


def _control_ids(tokenizer) -> set[int]:
    return set(tokenizer.added_tokens_decoder)


def _counts_line(sample: dict) -> str:
    labels = sample["labels"]
    trained = [s for s, lab in zip(sample.get("segments") or ["?"] * len(labels), labels) if lab != IGNORE_INDEX]
    roles = Counter(s.split(":")[0] for s in trained)
    per_role = ", ".join(f"{r} {n}" for r, n in roles.items())
    return (f"{len(labels)} tokens · <b>{len(trained)} trained</b> ({per_role or 'none'}) · "
            f"{len(labels) - len(trained)} masked (-100)")


LEGEND = (
    f"<span style='background:{TRAINED};padding:0 4px'>trained</span> "
    f"<span style='background:{MASKED};padding:0 4px'>masked (-100)</span> "
    f"<span style='outline:1.5px solid {CONTROL};padding:0 4px'>control token</span> "
    + " ".join(f"<span style='border-bottom:3px solid {c};padding:0 2px'>{r}</span>"
               for r, c in ROLE_LINE.items() if r != "tools")
)


def mask_html(tokenizer, sample: dict, title: str | None = None, max_tokens: int | None = None) -> str:
    """HTML of a labelled sample (``input_ids``, ``labels``, optional ``segments``), token by token."""
    ids, labels = sample["input_ids"], sample["labels"]
    if len(ids) != len(labels):
        raise ValueError(f"input_ids ({len(ids)}) and labels ({len(labels)}) differ in length")
    segments = sample.get("segments") or ["?"] * len(ids)
    control = _control_ids(tokenizer)
    n = len(ids) if max_tokens is None else min(max_tokens, len(ids))
    spans = []
    for pos, (tid, lab, seg, text) in enumerate(zip(ids[:n], labels[:n], segments[:n], token_strings(tokenizer, ids[:n]))):
        style = [f"background:{TRAINED if lab != IGNORE_INDEX else MASKED}",
                 f"border-bottom:3px solid {ROLE_LINE.get(seg.split(':')[0], '#fff')}", "margin:1px", "padding:0 1px"]
        if tid in control:
            style.append(f"outline:1.5px solid {CONTROL}")
        tip = f"pos {pos} · id {tid} · {seg} · label {lab}"
        cls = "tok trained" if lab != IGNORE_INDEX else "tok masked"
        spans.append(f"<span class='{cls}' title='{html.escape(tip, quote=True)}' "
                     f"style='{';'.join(style)}'>{_shown(text)}</span>")
    more = f" <i>… {len(ids) - n} more tokens</i>" if n < len(ids) else ""
    head = f"<div style='font-weight:bold'>{html.escape(title)}</div>" if title else ""
    return (f"<div class='mask'>{head}<div style='font-size:85%'>{LEGEND}<br>{_counts_line(sample)}</div>"
            f"<div style='font-family:monospace;line-height:1.9;white-space:pre-wrap'>{''.join(spans)}{more}</div></div>")


def side_by_side_html(tokenizer, samples: dict[str, dict], max_tokens: int | None = None) -> str:
    """Several labelled versions of a conversation (e.g. one per policy) in columns."""
    cols = "".join(f"<div style='flex:1;min-width:260px;padding:4px'>{mask_html(tokenizer, s, t, max_tokens)}</div>"
                   for t, s in samples.items())
    return f"<div style='display:flex;gap:8px;align-items:flex-start'>{cols}</div>"


def packed_html(tokenizer, row: dict) -> str:
    """HTML of one packed row: each sample its own colour, a bar at each boundary, position id under each token."""
    ids, labels, pos = row["input_ids"], row["labels"], row["position_ids"]
    starts = {0}
    at = 0
    for n in row["seq_lengths"]:
        at += n
        starts.add(at)
    sample, cells = -1, []
    for k, (tid, lab, p, text) in enumerate(zip(ids, labels, pos, token_strings(tokenizer, ids))):
        if k in starts:
            sample += 1
            cells.append("<span style='border-left:3px solid #111;margin:0 2px'></span>")
        colour = SAMPLE_COLOURS[sample % len(SAMPLE_COLOURS)]
        weight = "opacity:1" if lab != IGNORE_INDEX else "opacity:0.45"
        tip = html.escape(f"sample {sample} · position_id {p} · id {tid} · label {lab}", quote=True)
        cells.append(f"<span title='{tip}' style='display:inline-block;text-align:center;background:{colour};{weight};"
                     f"margin:1px;padding:0 1px'>{_shown(text.replace(chr(10), '↵'))}"
                     f"<br><sub style='color:#111'>{p}</sub></span>")
    info = (f"{len(row['seq_lengths'])} samples {list(row['seq_lengths'])} in {len(ids)} tokens · "
            "bright = trained, faded = masked · number = position_id (restarts at 0 per sample)")
    return f"<div style='font-size:85%'>{info}</div><div style='font-family:monospace;line-height:1.4'>{''.join(cells)}</div>"


def _html(text: str):
    from IPython.display import HTML

    return HTML(text)


def show_mask(tokenizer, sample: dict, title: str | None = None, max_tokens: int | None = None):
    """``mask_html`` as a displayable object (the last line of a notebook cell)."""
    return _html(mask_html(tokenizer, sample, title, max_tokens))


def show_side_by_side(tokenizer, samples: dict[str, dict], max_tokens: int | None = None):
    """``side_by_side_html`` as a displayable object."""
    return _html(side_by_side_html(tokenizer, samples, max_tokens))


def show_packed(tokenizer, row: dict):
    """``packed_html`` as a displayable object."""
    return _html(packed_html(tokenizer, row))


# ----------------------------------------------------------------------------- matplotlib
# Fonts that draw Chinese, by the name matplotlib lists; the first one installed is used.
CJK_FONTS = ("WenQuanYi Micro Hei", "Noto Sans CJK SC", "Noto Sans SC", "Source Han Sans SC", "Microsoft YaHei",
             "SimHei", "PingFang SC", "Heiti SC", "Droid Sans Fallback")
NO_CJK_FONT = ("no CJK font installed, so Chinese tokens show as #id: install one (Debian/Ubuntu: "
               "apt install fonts-wqy-microhei), delete .cache/matplotlib and restart the kernel")
_CJK_RANGES = ((0x3000, 0x303F), (0x3400, 0x4DBF), (0x4E00, 0x9FFF), (0xFF00, 0xFFEF))


def cjk_font() -> str | None:
    """The name of an installed font that draws Chinese (see ``CJK_FONTS``), or None."""
    from matplotlib import font_manager

    installed = {f.name for f in font_manager.fontManager.ttflist}
    return next((name for name in CJK_FONTS if name in installed), None)


def _drawable(text: str, cjk: bool) -> bool:
    def ok(c):
        return ord(c) < 0x2000 or c in "↵␣" or (cjk and any(lo <= ord(c) <= hi for lo, hi in _CJK_RANGES))
    return bool(text) and all(ok(c) for c in text)


def _label(text: str, tid: int, cjk: bool) -> str:
    """Token text a box can show: the text (newlines as ↵) when the fonts draw it, else ``#id``."""
    text = text.replace("\n", "↵")
    text = "␣" * len(text) if text.isspace() else text   # a blank box would look like a missing token
    return text if _drawable(text, cjk) else f"#{tid}"


def plot_mask(tokenizer, sample: dict, ax=None, per_row: int = 16, max_tokens: int = 128, title: str | None = None):
    """Static picture of a labelled sample: one box per token, trained green, masked grey.

    Chinese is drawn with an installed CJK font (``cjk_font``); without one, as token ids,
    and the title says how to install a font. Control tokens are drawn whole.
    """
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    ids, labels = sample["input_ids"][:max_tokens], sample["labels"][:max_tokens]
    rows = (len(ids) + per_row - 1) // per_row
    if ax is None:
        _, ax = plt.subplots(figsize=(per_row * 0.75, rows * 0.42 + 0.6))
    control, font = _control_ids(tokenizer), cjk_font()
    family = ["DejaVu Sans"] + ([font] if font else [])   # matplotlib falls back glyph by glyph
    shown = [_label(t, tid, font is not None) for tid, t in zip(ids, token_strings(tokenizer, ids))]
    for k, (tid, lab, text) in enumerate(zip(ids, labels, shown)):
        x, y = k % per_row, rows - 1 - k // per_row
        ax.add_patch(Rectangle((x, y), 0.95, 0.85, facecolor=TRAINED if lab != IGNORE_INDEX else MASKED,
                               edgecolor=CONTROL if tid in control else "none", linewidth=1.2))
        text = text if len(text) <= 14 else text[:13] + "…"
        ax.text(x + 0.47, y + 0.42, text, ha="center", va="center", family=family,
                fontsize=6 if len(text) <= 10 else 5)
    ax.set_xlim(0, per_row)
    ax.set_ylim(0, rows)
    ax.axis("off")
    title = title or (f"{sum(lab != IGNORE_INDEX for lab in labels)} of {len(labels)} tokens trained "
                      "(green); control tokens outlined")
    if font is None and any(t.startswith("#") for t in shown):
        title += "\n" + NO_CJK_FONT
    ax.set_title(title, fontsize=9)
    return ax.figure


def plot_packing(rows: list[dict], title: str = "Packing (bfd): samples share a row, not attention"):
    """Packed rows with sample boundaries, restarting ``position_ids`` and the resulting attention mask."""
    import matplotlib.pyplot as plt
    import numpy as np
    from matplotlib.patches import Rectangle

    width = max(len(r["input_ids"]) for r in rows)
    fig = plt.figure(figsize=(11, 2.2 + 0.55 * len(rows) + 3.2))
    grid = fig.add_gridspec(2, 2, height_ratios=[0.55 * len(rows) + 0.4, 3.2], hspace=0.45, wspace=0.25)
    strips = fig.add_subplot(grid[0, :])
    for r, row in enumerate(rows):
        y, at = len(rows) - 1 - r, 0
        for s, n in enumerate(row["seq_lengths"]):
            colour = SAMPLE_COLOURS[s % len(SAMPLE_COLOURS)]
            for k in range(n):
                trained = row["labels"][at + k] != IGNORE_INDEX
                strips.add_patch(Rectangle((at + k, y + 0.1), 1, 0.8, facecolor=colour, alpha=1 if trained else 0.35,
                                           linewidth=0))
            strips.text(at + n / 2, y + 0.5, f"sample {s} ({n})", ha="center", va="center", fontsize=7)
            at += n
            strips.plot([at, at], [y + 0.02, y + 0.98], color="#111", linewidth=2)
        if at < width:
            strips.add_patch(Rectangle((at, y + 0.1), width - at, 0.8, facecolor="white", edgecolor="#d1d5db",
                                       hatch="//", linewidth=0.5))
    strips.set_xlim(0, width)
    strips.set_ylim(0, len(rows))
    strips.set_yticks([len(rows) - 0.5 - r for r in range(len(rows))], [f"row {r}" for r in range(len(rows))])
    strips.set_xlabel("token position in the packed row (dark = trained, faded = masked; black bar = boundary)")
    strips.set_title(title, fontsize=11)

    pos_ax = fig.add_subplot(grid[1, 0])
    for r, row in enumerate(rows[:3]):
        pos_ax.plot(row["position_ids"], label=f"row {r}", linewidth=1.2)
    pos_ax.set_title(f"position_ids restart at 0 for each sample (rows 0–{min(3, len(rows)) - 1})", fontsize=9)
    pos_ax.set_xlabel("token in row")
    pos_ax.set_ylabel("position_id")
    pos_ax.legend(fontsize=7)

    att_ax = fig.add_subplot(grid[1, 1])
    shown = max(range(len(rows)), key=lambda r: len(rows[r]["seq_lengths"]))
    seg = np.repeat(np.arange(len(rows[shown]["seq_lengths"])), rows[shown]["seq_lengths"])
    n = len(seg)
    causal = np.tril(np.ones((n, n), dtype=bool))
    mask = causal & (seg[:, None] == seg[None, :])
    picture = np.where(mask, 2, np.where(causal, 1, 0))
    att_ax.imshow(picture, cmap=plt.matplotlib.colors.ListedColormap(["white", "#fecaca", "#16a34a"]),
                  interpolation="nearest", vmin=0, vmax=2)
    att_ax.set_title(f"row {shown} attention: green = allowed (block-diagonal causal)\n"
                     "pink = what plain causal attention would leak across samples", fontsize=8)
    att_ax.set_xlabel("key position")
    att_ax.set_ylabel("query position")
    return fig


def packing_figure(tokenizer, path: str | Path | None = None, max_length: int = 128, n: int = 10):
    """The course's packing picture: ``n`` short generated conversations packed by TRL's ``bfd``; saved if ``path``."""
    samples = [s for s in masks.build_many(tokenizer, synthetic_conversations(60, seed=3))
               if len(s["input_ids"]) <= max_length * 0.45][:n]
    packed, _ = packing.pack(samples, max_length=max_length)
    fig = plot_packing(packed)
    if path is not None:
        fig.savefig(path, dpi=110, bbox_inches="tight", metadata={"Software": None})
    return fig


if __name__ == "__main__":
    import matplotlib

    matplotlib.use("Agg")
    out = paths.PICS / "packing.png"
    out.parent.mkdir(parents=True, exist_ok=True)
    packing_figure(load_tokenizer(), out)
    print(f"wrote {out}")
