"""A real IPython shell that raises instead of printing, with velonb loaded, against the emulator.

``TestingShell`` follows jupysql's idea (``run_cell`` re-raises the cell's error) but lives in the
tests, not in the package. ``run_cell`` captures everything a user would see (stdout, stderr, rich
displays and their in-place updates) and checks that no secret is in it. This is a module of its
own (imported by the magic and cache conftests) so that exactly one ``TestingShell`` class exists:
IPython's shell is a process-wide singleton.
"""


from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import capture_output
from traitlets.config import Config
from wire_helpers import load_api_config

SECRET_MARKERS = ("PRIVATE KEY",)


class TestingShell(InteractiveShell):
    """An InteractiveShell whose ``run_cell`` raises the cell's exception."""

    def run_cell(self, *args: Any, **kwargs: Any) -> Any:
        result = super().run_cell(*args, **kwargs)
        result.raise_error()
        return result


@dataclass
class Cell:
    """What running one cell showed."""

    result: Any = None
    stdout: str = ""
    stderr: str = ""
    displays: list[dict[str, Any]] = field(default_factory=list)  # publish() calls, in order
    error: BaseException | None = None

    def text(self, mime: str = "text/plain") -> str:
        """Every display of that mime type, joined, plus stdout and stderr."""
        shown = [d["data"].get(mime, "") for d in self.displays]
        return "\n".join([*shown, self.stdout, self.stderr])

    def everything(self) -> str:
        return "\n".join([self.text("text/plain"), self.text("text/html"),
                          "\n".join(getattr(self.error, "_render_traceback_", list)())])

    @property
    def updates(self) -> list[dict[str, Any]]:
        return [d for d in self.displays if d.get("update")]


@pytest.fixture(scope="session")
def shell() -> TestingShell:
    if InteractiveShell.initialized():
        instance = InteractiveShell.instance()
        assert isinstance(instance, TestingShell), "another IPython shell is already running"
        return instance
    config = Config()
    config.HistoryManager.enabled = False
    return TestingShell.instance(config=config)


@pytest.fixture
def bare(shell: TestingShell) -> Iterator[TestingShell]:
    """The shell with ``%load_ext velonb`` only; unloaded and reset afterwards."""
    shell.run_line_magic("load_ext", "velonb")
    try:
        yield shell
    finally:
        shell.run_line_magic("unload_ext", "velonb")
        shell.config.pop("Velonb", None)  # %config Velonb.x = ... persists in the shell config
        shell.reset(new_session=False)


@pytest.fixture
def secrets(api_config: Path) -> list[str]:
    """Long lines of the private key's PEM body: none may ever appear in an output."""
    pem = load_api_config(api_config)["client_private_key"]
    return [line for line in pem.splitlines() if len(line) > 20 and "-----" not in line]


@pytest.fixture
def ip(bare: TestingShell, api_config: Path) -> TestingShell:
    """The shell with ``%load_ext velonb`` and ``%vql_config <apiuser config>`` run."""
    bare.run_line_magic("config", "Velonb.progress = 'off'")
    with capture_output():
        bare.run_line_magic("vql_config", str(api_config))
    return bare


@pytest.fixture
def run(ip: TestingShell, secrets: list[str]) -> Any:
    """``run(code, raises=None) -> Cell``: run a cell, capture what it shows, scan for secrets."""

    def run_cell(code: str, raises: type[BaseException] | None = None) -> Cell:
        cell = Cell()
        with capture_output() as captured:
            try:
                cell.result = ip.run_cell(code).result
            except BaseException as err:
                if raises is None or not isinstance(err, raises):
                    raise
                cell.error = err
        if raises is not None and cell.error is None:
            pytest.fail(f"the cell did not raise {raises.__name__}")
        cell.stdout, cell.stderr = captured.stdout, captured.stderr
        cell.displays = [dict(data=o.data, transient=o.transient, update=o.update)
                         for o in captured.outputs]
        shown = cell.everything()
        for marker in [*SECRET_MARKERS, *secrets]:
            assert marker not in shown, "a secret reached the cell output"
        return cell

    return run_cell


def strip_ansi(text: str) -> str:
    return re.sub(r"\x1b\[[0-9;]*m", "", text)
