"""`velonb emulator` binds loopback only unless --allow-remote is given."""

from velonb import cli


def test_cli_refuses_a_non_loopback_host_without_allow_remote(tmp_path, capsys):
    status = cli.main(["emulator", "--host", "0.0.0.0", "--config-out", str(tmp_path / "c.yaml")])
    assert status == 2
    err = capsys.readouterr().err
    assert "--allow-remote" in err and "0.0.0.0" in err
    assert not (tmp_path / "c.yaml").exists()
