"""ipywidgets front-ends for the notebooks. Each builder returns a widget to display.

Logic lives in the topic modules (masks, data, train, …); a builder here only wires
controls to those functions and redraws an output area.
"""
from __future__ import annotations


def mask_explorer(tokenizer, conversations: dict[str, dict], max_tokens: int | None = 400):
    """Notebook 03: pick a conversation and a labelling policy, see which tokens are trained.

    ``conversations`` maps a name to a row with ``messages`` (and optional ``tools``).
    Drawn once at build time, so a headless run (papermill) shows the first choice.
    """
    import html

    import ipywidgets as w
    from IPython.display import HTML, display

    from . import masks, viz

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
