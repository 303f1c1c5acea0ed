"""In JupyterLab, in Chromium: search a client, select it, pick an artifact, change a
parameter, click Collect and see the result table; then start a hunt from its panel, watch the
clients answer and stop it (screenshots at every step)."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import pytest

from velonb.emulator.world.incident import INCIDENT

pytestmark = pytest.mark.browser

NOTEBOOK = "03-collect-with-widgets.ipynb"
HOST = INCIDENT.patient_zero  # WKS-FIN-0042
ARTIFACT = "Windows.System.Pslist"
ANSWERING = ("WKS-FIN-0042", "WKS-FIN-0057")  # the online finance hosts (WKS-FIN-0061 is not)
STEP_MS = 30_000  # one UI step (kernel start, a query, a collection): bounded, generous


class Steps:
    """Numbered screenshots, so a failure shows how far the test got."""

    def __init__(self, page: Any, where: Path) -> None:
        self.page, self.where, self.n = page, where, 0

    def shot(self, name: str, show: Any = None) -> None:
        if show is not None:  # the notebook scrolls inside the page: bring the step into view
            show.evaluate("element => element.scrollIntoView({block: 'start'})")
        self.n += 1
        self.page.screenshot(path=str(self.where / f"{self.n:02d}-{name}.png"), full_page=True)


def test_collect_panel_in_jupyterlab(lab, browser, screenshots):
    started = time.monotonic()
    print(f"\nscreenshots: {screenshots}")
    context = browser.new_context(viewport={"width": 1400, "height": 1100})
    page = context.new_page()
    steps = Steps(page, screenshots)
    console: list[str] = []
    page.on("console", lambda m: console.append(f"{m.type}: {m.text[:300]}"))
    try:
        _drive(page, lab, steps)
    except Exception:
        steps.shot("failure")
        print("browser console:\n" + "\n".join(console[-40:]))
        print(f"JupyterLab log:\n{lab.log_tail()}")
        raise
    finally:
        context.close()
    print(f"browser test took {time.monotonic() - started:.1f}s")


def _run_all(page: Any) -> None:
    """Run > Run All Cells, until the first code cell runs. JupyterLab may reconnect the new
    kernel's websocket just after opening the notebook, dropping what was sent on the first
    one: so retry (bounded) rather than guess when the kernel is settled."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
    from playwright.sync_api import expect

    expect(page.locator(".jp-NotebookPanel-toolbar .jp-KernelName")).to_contain_text(
        "Python", timeout=STEP_MS)
    prompt = page.locator(".jp-CodeCell .jp-InputPrompt").first
    for attempt in range(4):
        page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
        page.get_by_role("menuitem", name="Run All Cells", exact=True).click()
        select = page.locator(".jp-Dialog").get_by_role("button", name="Select", exact=True)
        if select.is_visible():  # a kernel chooser: accept the notebook's kernel
            select.click()
        try:
            expect(prompt).to_contain_text(re.compile(r"\[(\*|\d+)\]"), timeout=8_000)
            return
        except (AssertionError, PlaywrightTimeout):
            print(f"run-all attempt {attempt + 1}: the kernel did not start running cells")
    raise AssertionError("the notebook's cells never ran")


def _drive(page: Any, lab: Any, steps: Steps) -> None:
    from playwright.sync_api import expect

    page.goto(lab.lab_url(NOTEBOOK), timeout=STEP_MS)
    page.locator(".jp-NotebookPanel .jp-Cell").first.wait_for(timeout=STEP_MS)
    steps.shot("notebook-open")
    _run_all(page)
    panel = page.locator(".velonb-collect-panel")
    expect(panel).to_be_visible(timeout=STEP_MS)
    clients = panel.locator(".velonb-client-table select option")
    expect(clients.first).to_be_attached(timeout=STEP_MS)
    steps.shot("panel-rendered", panel.locator(".velonb-client-picker"))

    # 1. Search with the server's syntax and select the one match.
    search = panel.locator(".velonb-client-search input")
    search.fill(f"host:{HOST}")
    search.press("Enter")
    expect(clients).to_have_count(1, timeout=STEP_MS)
    expect(clients.first).to_contain_text(HOST)
    expect(clients.first).to_contain_text("●")  # online marker
    panel.locator(".velonb-client-table select").select_option(index=0)
    expect(panel.locator(".velonb-client-chosen")).to_contain_text("Selected (1)",
                                                                   timeout=STEP_MS)
    expect(panel.locator(".velonb-client-chosen")).to_contain_text(HOST)
    steps.shot("client-selected", panel.locator(".velonb-client-picker"))

    # 2. Filter artifacts, pick the process list, change a parameter.
    panel.locator(".velonb-artifact-filter input").fill("pslist")
    artifacts = panel.locator(".velonb-artifact-list select")
    # Wait for the filtered list: a Select syncs the chosen *index*, so choosing while the
    # options are still being replaced would pick by a stale position.
    expect(artifacts.locator("option")).to_have_count(2, timeout=STEP_MS)
    expect(artifacts.locator("option", has_text=ARTIFACT)).to_be_attached(timeout=STEP_MS)
    artifacts.select_option(label=ARTIFACT)
    expect(panel.locator(".velonb-artifact-description")).to_contain_text(ARTIFACT,
                                                                          timeout=STEP_MS)
    regex = panel.locator(".velonb-param-ProcessRegex input")
    expect(regex).to_have_value(".", timeout=STEP_MS)
    regex.fill("(?i)powershell|winword")
    regex.press("Tab")
    expect(panel.locator(".velonb-param-form")).to_contain_text("✓ changed", timeout=STEP_MS)
    steps.shot("artifact-and-parameter", panel.locator(".velonb-artifact-filter"))

    # 3. Collect: progress per client, then the result table.
    panel.locator(".velonb-collect-button button, button.velonb-collect-button").first.click()
    progress = panel.locator(".velonb-collect-progress")
    expect(progress).to_contain_text(HOST, timeout=STEP_MS)
    result = panel.locator(".velonb-result-table table")
    expect(result).to_be_visible(timeout=STEP_MS)
    expect(progress).to_contain_text("FINISHED", timeout=STEP_MS)
    expect(result).to_contain_text("powershell.exe")
    expect(result).to_contain_text("WINWORD.EXE")
    expect(result).not_to_contain_text("svchost.exe")  # the changed parameter was used
    expect(panel.locator(".velonb-collect-status")).to_contain_text("done")
    steps.shot("results", progress)

    # 4. The kernel holds the same data: run the cell reading panel.results.
    _run_cell(page, "frame.shape")
    shapes = page.locator(".jp-CodeCell", has_text="frame.shape").locator(".jp-OutputArea")
    expect(shapes).to_contain_text("'Windows.System.Pslist': (", timeout=STEP_MS)

    # 5. Re-running the panel's cell keeps the selection, the parameter and the results.
    _run_cell(page, "panel = CollectPanel(conn)")
    again = page.locator(".velonb-collect-panel")
    expect(again).to_have_count(1, timeout=STEP_MS)
    expect(again.locator(".velonb-client-chosen")).to_contain_text(HOST, timeout=STEP_MS)
    expect(again.locator(".velonb-param-ProcessRegex input")).to_have_value(
        "(?i)powershell|winword", timeout=STEP_MS)
    expect(again.locator(".velonb-result-table table")).to_contain_text("powershell.exe",
                                                                        timeout=STEP_MS)
    steps.shot("rerun-keeps-state", again.locator(".velonb-client-picker"))

    # 6. The hunt panel: start the paused hunt, watch the finance hosts answer, stop it.
    hunt = page.locator(".velonb-hunt-panel")
    expect(hunt).to_be_visible(timeout=STEP_MS)
    status = hunt.locator(".velonb-hunt-status")
    expect(status).to_contain_text("PAUSED", timeout=STEP_MS)
    steps.shot("hunt-paused", hunt)
    hunt.locator(".velonb-hunt-start button, button.velonb-hunt-start").first.click()
    expect(status).to_contain_text("RUNNING", timeout=STEP_MS)
    answered = f"{len(ANSWERING)} of {len(ANSWERING)} scheduled clients answered"
    expect(hunt.locator(".velonb-hunt-counts")).to_contain_text(answered, timeout=STEP_MS)
    flows = hunt.locator(".velonb-hunt-flows")
    expect(flows).to_contain_text("FINISHED", timeout=STEP_MS)
    for host in ANSWERING:
        expect(flows).to_contain_text(host)
    steps.shot("hunt-answered", hunt)
    hunt.locator(".velonb-hunt-stop button, button.velonb-hunt-stop").first.click()
    expect(status).to_contain_text("STOPPED", timeout=STEP_MS)
    steps.shot("hunt-stopped", hunt)


def _run_cell(page: Any, text: str) -> None:
    """Put the cursor in the code cell containing ``text`` and run it (Shift+Enter)."""
    cell = page.locator(".jp-CodeCell", has_text=text).first
    cell.locator(".cm-content").click()
    page.keyboard.press("Shift+Enter")
