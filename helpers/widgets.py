"""ipywidgets front-ends for the notebooks. Each builder returns a widget to display.

Logic lives in the topic modules (masks, data, train, …); a builder here only wires
controls to those functions and redraws an output area.
"""
from __future__ import annotations

from . import chat, data, evaluate, masks, train, viz
from .lora import PROJECTIONS


def mask_explorer(tokenizer, conversations: dict[str, dict], max_tokens: int | None = 400):
    """Notebook 03: pick a conversation and a labelling policy, see which tokens are trained.

    ``conversations`` maps a name to a row with ``messages`` (and optional ``tools``).
    Drawn once at build time, so a headless run (papermill) shows the first choice.
    """
    import html

    import ipywidgets as w
    from IPython.display import HTML, display

    pick = w.Dropdown(options=list(conversations), description="conversation")
    policy = w.ToggleButtons(options=list(masks.POLICIES), description="policy")
    tools = w.Checkbox(value=True, description="train tool-call turns")
    end = w.Checkbox(value=True, description="train <|im_end|>")
    out = w.Output()

    def redraw(_=None):
        row = conversations[pick.value]
        out.clear_output(wait=True)
        with out:
            try:
                sample = masks.build_labels(tokenizer, row["messages"], row.get("tools"), policy=policy.value,
                                            train_tool_calls=tools.value, train_end_token=end.value)
            except masks.MaskError as err:
                display(HTML(f"<b style='color:#b91c1c'>{html.escape(str(err))}</b>"))
                return
            display(viz.show_mask(tokenizer, sample, title=pick.value, max_tokens=max_tokens))

    for control in (pick, policy, tools, end):
        control.observe(redraw, names="value")
    redraw()
    return w.VBox([w.HBox([pick, policy]), w.HBox([tools, end]), out])


def mix_weights(pools: dict, weights: dict | None = None, seed: int = 42, total_size: int | None = None):
    """Notebook 04: one slider per pool and a strategy toggle; redraws the composition bars.

    ``pools`` are the deduplicated pools (``helpers.data``); each change re-runs the mix
    (fast: index arithmetic over a few hundred rows) and shows requested vs realised
    shares with row counts. Drawn once at build time, so papermill shows the defaults.
    """
    import warnings

    import ipywidgets as w
    import matplotlib.pyplot as plt
    from IPython.display import display

    start = data.normalize_weights(weights or data.DEFAULT_WEIGHTS, pools)
    sliders = {p: w.FloatSlider(value=round(start[p], 2), min=0, max=1, step=0.05, description=p,
                                continuous_update=False) for p in pools}
    strategy = w.ToggleButtons(options=list(data.STRATEGIES), description="strategy")
    out = w.Output()

    def redraw(_=None):
        out.clear_output(wait=True)
        with out, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                _, mix = data.mix(pools, {p: s.value for p, s in sliders.items()}, strategy.value, seed, total_size)
            except ValueError as err:
                print(f"cannot mix: {err}")
                return
            fig, ax = plt.subplots(figsize=(7, 3))
            data.report.plot_composition(mix, ax=ax)
            plt.close(fig)  # shown once, inside the output area (plt.show() here can stall a headless run)
            display(fig, data.report.mix_table(mix))

    for control in (*sliders.values(), strategy):
        control.observe(redraw, names="value")
    redraw()
    return w.VBox([strategy, w.HBox([w.VBox(list(sliders.values())), out])])


def lora_explorer(model, preset: str = "gpu-16gb"):
    """Notebook 05: sliders for r, alpha, dropout and target-module boxes → trainable parameters
    (counted on ``model``) and the estimated peak VRAM of Qwen3-4B with a preset's batch × length.

    Drawn once at build time, so a headless run (papermill) shows the defaults.
    """
    import ipywidgets as w

    r = w.SelectionSlider(options=[1, 2, 4, 8, 16, 32, 64, 128], value=16, description="r")
    alpha = w.SelectionSlider(options=[1, 2, 4, 8, 16, 32, 64, 128, 256], value=32, description="alpha")
    dropout = w.FloatSlider(value=0.05, min=0, max=0.5, step=0.05, description="dropout")
    boxes = {m: w.Checkbox(value=True, description=m, indent=False) for m in PROJECTIONS}
    presets = w.Dropdown(options=[p for p in train.PRESETS if p.startswith("gpu")], value=preset,
                         description="preset")
    out = w.Output()

    def redraw(_=None):
        out.clear_output(wait=True)
        with out:
            targets = [m for m, b in boxes.items() if b.value]
            try:
                s = train.lora_summary(model, r.value, alpha.value, dropout.value, targets, presets.value)
            except ValueError as err:
                print(f"not a valid LoRA: {err}")
                return
            print(f"trainable LoRA parameters here: {s['lora_params']:,} ({s['lora_share']:.2%} of the model)")
            print(f"scale alpha/r = {s['scale']:g}; dropout {s['dropout']:g}")
            print(f"Qwen3-4B: {s['qwen3_4b_lora_params']:,} LoRA parameters; estimated peak VRAM "
                  f"{s['qwen3_4b_vram_gib']} GiB at batch {s['batch']} × {s['seq']} tokens ({s['preset']})")
            print("  " + ", ".join(f"{k} {v}" for k, v in s["qwen3_4b_vram_parts"].items()))

    for control in (r, alpha, dropout, presets, *boxes.values()):
        control.observe(redraw, names="value")
    redraw()
    return w.VBox([w.HBox([r, alpha, dropout]), w.HBox(list(boxes.values())), presets, out])


def chat_box(model, tokenizer, max_new_tokens: int = 128):
    """Notebook 06: a chat with the tuned model, with a switch to ask the base model instead.

    Nothing runs until Send is clicked, so a headless run (papermill) just shows the box.
    """
    import html

    import ipywidgets as w
    from IPython.display import HTML, display

    text = w.Text(placeholder="Ask something…", layout=w.Layout(width="60%"))
    send, reset = w.Button(description="Send", button_style="primary"), w.Button(description="New chat")
    adapter = w.ToggleButtons(options=[("tuned", True), ("base", False)], description="model")
    out, history = w.Output(), []

    def show():
        out.clear_output(wait=True)
        with out:
            for m in history:
                who = "🧑" if m["role"] == "user" else "🤖"
                display(HTML(f"<div><b>{who}</b> {html.escape(m['content'])}</div>"))

    def on_send(_=None):
        if not text.value.strip():
            return
        history.append({"role": "user", "content": text.value.strip()})
        text.value = ""
        with evaluate.adapter_switch(model, adapter.value):
            history.append({"role": "assistant", "content": chat.reply(model, tokenizer, history, max_new_tokens)})
        show()

    def on_reset(_=None):
        history.clear()
        show()

    send.on_click(on_send)
    reset.on_click(on_reset)
    return w.VBox([adapter, w.HBox([text, send, reset]), out])
