"""The ``velonb emulator`` / ``velonb demo`` commands (thin wrappers over Emulator)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time

from velonb import cli


def test_cli_import_does_not_import_grpc():
    code = "import sys, velonb.cli; print('grpc' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_emulator_command_writes_private_config(tmp_path, monkeypatch, capsys):
    config = tmp_path / "out" / "api.yaml"
    stopped = threading.Event()

    granted: list[bool] = []

    def fake_serve(out):
        stopped.set()

    real_start = cli._start_emulator

    def start(args, config_path, roles):
        emulator = real_start(args, config_path, roles)
        granted.append(emulator.acl.may_publish("bob", "root", "Custom.Notebook.Findings"))
        return emulator

    monkeypatch.setattr(cli, "_serve_forever", fake_serve)
    monkeypatch.setattr(cli, "_start_emulator", start)
    argv = ["emulator", "--config-out", str(config), "--user", "bob", "--role", "api",
            "--publish-queue", "Custom.Notebook.Findings"]
    assert cli.main(argv) == 0
    assert stopped.is_set() and granted == [True]
    text = capsys.readouterr().out
    assert "listening on 127.0.0.1:" in text and str(config) in text
    assert "PRIVATE KEY" not in text
    assert os.stat(config).st_mode & 0o777 == 0o600


def test_demo_prints_how_to_connect(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    monkeypatch.setattr(cli, "_serve_forever", lambda out: None)
    start = time.monotonic()
    assert cli.main(["demo"]) == 0
    text = capsys.readouterr().out
    assert "export VELONB_API_CONFIG=" in text and "velonb.connect()" in text
    config = next(tmp_path.rglob("api_client.yaml"))
    assert os.stat(config.parent).st_mode & 0o777 == 0o700
    assert "VELONB_API_CONFIG" not in os.environ
    assert time.monotonic() - start < 10
