"""Test support: a real JupyterLab on loopback, driven by Debian's chromium through Playwright."""
from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from helpers import paths

CHROMIUM = "/usr/bin/chromium"
INSTALL_HINT = ("Debian's chromium is needed for the browser tests: `apt-get update && apt-get install -y chromium` "
                "(make test does this when run as root). Never download a browser build.")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def _fresh_lab_settings(folder: Path) -> dict:
    """A clean user-settings and workspace dir: every cell rendered (no windowing), no news toast."""
    shutil.rmtree(folder, ignore_errors=True)
    settings = {
        "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
        "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {"fetchNews": "false"},
    }
    for name, value in settings.items():
        path = folder / "settings" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(value))
    (folder / "workspaces").mkdir(parents=True)
    return {"JUPYTERLAB_SETTINGS_DIR": str(folder / "settings"),
            "JUPYTERLAB_WORKSPACES_DIR": str(folder / "workspaces")}


@contextlib.contextmanager
def jupyterlab(log: Path | None = None):
    """Start JupyterLab (token auth, app exposed as window.jupyterapp); yield its base URL with token.

    Port 0: the server binds a port the OS picks and writes it to its runtime file, so no other
    process can take the port between choosing and binding it.
    """
    token = secrets.token_hex(16)
    log = log or paths.output_dir("runs", "screenshots") / "jupyterlab.log"
    runtime = log.parent / "lab-runtime"
    shutil.rmtree(runtime, ignore_errors=True)
    cmd = [sys.executable, "-m", "jupyterlab", "--no-browser", "--ServerApp.ip=127.0.0.1",
           "--ServerApp.port=0", "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}",
           f"--ServerApp.root_dir={paths.PROJECT_ROOT}", "--LabApp.expose_app_in_browser=True",
           "--ServerApp.allow_root=True"]
    env = {**os.environ, **_fresh_lab_settings(log.parent / "lab-user"), "JUPYTER_RUNTIME_DIR": str(runtime)}
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env)
        try:
            info = runtime / f"jpserver-{proc.pid}.json"
            deadline = time.time() + 90
            while True:
                try:
                    base = f"http://127.0.0.1:{json.loads(info.read_text())['port']}"
                    urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2)
                    break
                except (OSError, ValueError, KeyError):  # no runtime file yet, half written, or not serving
                    if proc.poll() is not None or time.time() > deadline:
                        raise RuntimeError(f"JupyterLab did not start; see {log}") from None
                    time.sleep(0.5)
            yield base, token
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()


@contextlib.contextmanager
def browser_page(width: int = 1400, height: int = 1000):
    """A Playwright page in headless Debian chromium with a fresh profile."""
    if not os.access(CHROMIUM, os.X_OK):
        raise RuntimeError(INSTALL_HINT)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": width, "height": height})
            yield page
        finally:
            browser.close()


def open_notebook(page, base: str, token: str, relpath: str, timeout_ms: int = 120_000) -> None:
    """Open a notebook in JupyterLab and wait until *that* notebook is loaded and its kernel idle.

    Checking the path matters when one page opens several notebooks: right after ``goto`` the
    previous notebook can still be ``currentWidget`` with an idle kernel.
    """
    page.goto(f"{base}/lab/tree/{relpath}?token={token}", timeout=timeout_ms)
    page.wait_for_function(
        "(path) => { const w = window.jupyterapp && window.jupyterapp.shell.currentWidget;"
        " return !!(w && w.context && w.context.path === path && w.context.isReady"
        " && w.content.model && w.content.model.cells.length > 0"
        " && w.sessionContext.session && w.sessionContext.session.kernel"
        " && w.sessionContext.session.kernel.status === 'idle'); }",
        arg=relpath, timeout=timeout_ms)


def run_command(page, command: str, args: dict | None = None) -> None:
    """Execute a JupyterLab command (e.g. ``notebook:run-all-cells``)."""
    page.evaluate("([c, a]) => window.jupyterapp.commands.execute(c, a)", [command, args or {}])


def wait_idle(page, timeout_ms: int = 600_000) -> None:
    """Wait until every cell has run: no '[*]' prompt left and the kernel idle."""
    page.wait_for_function(
        "() => { const w = window.jupyterapp.shell.currentWidget;"
        " const busy = [...document.querySelectorAll('.jp-InputPrompt')].some(e => e.textContent.includes('*'));"
        " return !busy && w.sessionContext.session.kernel.status === 'idle'; }", timeout=timeout_ms)


def cell_errors(page) -> list[str]:
    """``ename: evalue`` of every error output in the open notebook (from its model, not the DOM)."""
    return page.evaluate(
        "() => { const cells = window.jupyterapp.shell.currentWidget.content.model.cells; const out = [];"
        " for (let i = 0; i < cells.length; i++) { const c = cells.get(i);"
        "  if (c.type !== 'code') continue;"
        "  for (const o of c.outputs.toJSON()) if (o.output_type === 'error') out.push(`cell ${i}: ${o.ename}: ${o.evalue}`); }"
        " return out; }")
