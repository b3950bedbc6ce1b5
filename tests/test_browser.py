"""The course in a real JupyterLab, driven by headless Debian chromium (Playwright).

Notebooks are opened from copies under runs/browser/ so autosave never writes outputs
into the committed notebooks. Screenshots go to runs/screenshots/.
"""
import shutil
import sys
from pathlib import Path

import pytest

import helpers
from helpers import masks, paths, templates
from helpers.lora import lora_params

sys.path.insert(0, str(Path(__file__).parent))
import lab  # noqa: E402

SHOTS = paths.RUNS / "screenshots"
COPIES = paths.RUNS / "browser"


@pytest.fixture(scope="module")
def session(tiny_model_dir):
    if not Path(lab.CHROMIUM).exists():
        pytest.fail(lab.INSTALL_HINT)
    SHOTS.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(COPIES, ignore_errors=True)
    shutil.copytree(paths.PROJECT_ROOT / "notebooks", COPIES / "notebooks")
    with lab.jupyterlab(log=SHOTS / "jupyterlab.log") as (base, token), lab.browser_page() as page:
        yield page, base, token


def _open_and_dismiss(page, base, token, name):
    lab.open_notebook(page, base, token, f"runs/browser/notebooks/{name}")
    for label in ("No", "Dismiss"):   # JupyterLab's news toast would cover the screenshot
        button = page.locator(f".jp-toast-button:has-text('{label}')")
        if button.count():
            button.first.click()


def test_loss_mask_renders_in_colour(session):
    page, base, token = session
    _open_and_dismiss(page, base, token, "03_loss_mask.ipynb")
    lab.run_command(page, "notebook:run-all-cells")
    page.wait_for_timeout(2000)
    lab.wait_idle(page)
    assert lab.cell_errors(page) == []
    first = page.locator(".jp-OutputArea-output .mask").first
    first.scroll_into_view_if_needed()
    page.screenshot(path=str(SHOTS / "03_loss_mask.png"))
    trained, masked = first.locator(".tok.trained").count(), first.locator(".tok.masked").count()

    tok = helpers.load_tokenizer("tiny-qwen3")
    expected = masks.build_labels(tok, templates.load_examples()["sft-0103"]["messages"])["labels"]
    assert trained == sum(x != masks.IGNORE_INDEX for x in expected) > 0
    assert masked == sum(x == masks.IGNORE_INDEX for x in expected) > 0
    colours = first.locator(".tok.trained").first.evaluate("e => getComputedStyle(e).backgroundColor")
    assert colours != first.locator(".tok.masked").first.evaluate("e => getComputedStyle(e).backgroundColor")
    # the mask explorer is a live widget rendered by JupyterLab's widget manager
    assert page.locator(".jupyter-widgets.widget-dropdown, .jupyter-widgets .widget-dropdown").count() >= 1


def test_lora_slider_updates_the_exact_count(session):

    page, base, token = session
    _open_and_dismiss(page, base, token, "05_qlora_training.ipynb")
    index = page.evaluate(
        "() => { const cells = window.jupyterapp.shell.currentWidget.content.model.cells;"
        " for (let i = 0; i < cells.length; i++) if (cells.get(i).sharedModel.getSource().includes('widgets.lora_explorer')) return i;"
        " return -1; }")
    assert index > 0, "notebook 05 must show widgets.lora_explorer"
    page.evaluate(f"() => {{ window.jupyterapp.shell.currentWidget.content.activeCellIndex = {index}; }}")
    lab.run_command(page, "notebook:run-all-above")
    page.wait_for_timeout(1000)
    lab.wait_idle(page)
    lab.run_command(page, "notebook:run-cell")
    page.wait_for_timeout(1000)
    lab.wait_idle(page)
    assert lab.cell_errors(page) == []

    model = helpers.load_model("tiny-qwen3")
    readout = page.locator(".jp-OutputArea-output:has-text('trainable LoRA parameters here')").last
    readout.wait_for(timeout=60_000)
    assert f"{lora_params(model, 16):,}" in readout.inner_text()

    handle = page.locator(".widget-hslider .noUi-handle, .widget-slider .noUi-handle").first
    handle.scroll_into_view_if_needed()
    handle.focus()
    page.keyboard.press("ArrowLeft")   # r: 16 → 8 (one option down)
    expected = f"trainable LoRA parameters here: {lora_params(model, 8):,}"
    page.locator(f".jp-OutputArea-output:has-text('{expected}')").first.wait_for(timeout=60_000)
    page.screenshot(path=str(SHOTS / "05_lora_widget.png"))
