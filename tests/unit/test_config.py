"""velonb.config: discovery, parsing, validation, decryption and masking, with real certificates."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import io
import os
import re
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from velonb import config as cfgmod
from velonb.config import (
    DEFAULT_SERVER_NAME,
    ApiClientConfig,
    config_from_dict,
    discover_config_path,
    load_config,
    profile_dir,
    save_profile,
)
from velonb.emulator.pki import CertificateAuthority, Credential, api_client_config
from velonb.emulator.pki import write_api_client_yaml as write_yaml
from velonb.errors import (
    CertificateExpiredError,
    ConfigError,
    ConfigNotFoundError,
    ConfigWarning,
    KeyPasswordError,
)

NAME = "analyst"
PASSWORD = "correct horse"
ENV_VARS = (
    "VELONB_API_CONFIG",
    "VELOCIRAPTOR_API_FILE",
    "VELOCIRAPTOR_API_CONFIG",
    "VELONB_PROFILE",
    "VELONB_KEY_PASSWORD",
)


class PKI:
    """One CA and the client credentials every test needs, generated once per module."""

    def __init__(self) -> None:
        now = dt.datetime.now(dt.UTC)
        self.ca = CertificateAuthority.generate()
        self.other_ca = CertificateAuthority.generate()  # same subject name, different key
        self.good = self.ca.issue(NAME)
        self.encrypted = self.ca.issue(NAME, password=PASSWORD)
        self.foreign = self.other_ca.issue(NAME)
        self.expired = self.ca.issue(
            NAME, not_before=now - dt.timedelta(days=400), not_after=now - dt.timedelta(days=1)
        )
        self.future = self.ca.issue(NAME, not_before=now + dt.timedelta(days=2))
        self.soon = self.ca.issue(NAME, not_before=now - dt.timedelta(days=1), valid_days=6)

    def config(self, cred: Credential | None = None, **kw: Any) -> dict[str, Any]:
        kw.setdefault("name", NAME)
        kw.setdefault("connection_string", "127.0.0.1:8001")
        return api_client_config(self.ca, cred or self.good, **kw)


@pytest.fixture(scope="module")
def pki() -> PKI:
    return PKI()


@pytest.fixture(autouse=True)
def isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """A fresh HOME / XDG config dir and no velonb/pyvelociraptor env vars."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    for var in ENV_VARS:
        monkeypatch.delenv(var, raising=False)
    return home


def write(path: Path, data: Any, mode: int = 0o600) -> Path:
    """Write YAML (dict via pki's writer) or raw text/bytes, with the given file mode."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, dict):
        write_yaml(path, data)
    elif isinstance(data, bytes):
        path.write_bytes(data)
    else:
        path.write_text(data)
    os.chmod(path, mode)
    return path


def key_body(pem: str) -> list[str]:
    """The base64 lines of a PEM block (what must never leak)."""
    return [ln for ln in pem.splitlines() if ln and not ln.startswith("-----") and ":" not in ln]


def same_key(key_pem: str, cred: Credential) -> bool:
    """Whether an unencrypted private key PEM belongs to cred's certificate."""
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    key = serialization.load_pem_private_key(key_pem.encode(), None).public_key()
    der = serialization.Encoding.DER
    return key.public_bytes(der, spki) == cred.certificate.public_key().public_bytes(der, spki)


def assert_no_secret(text: str, *pems: str) -> None:
    assert "PRIVATE KEY" not in text
    assert PASSWORD not in text
    for pem in pems:
        for line in key_body(pem):
            assert line not in text


# --- happy path and the ApiClientConfig API -------------------------------------------------------


def test_load_valid_config(pki: PKI, tmp_path: Path) -> None:
    path = write(tmp_path / "api.yaml", pki.config(max_grpc_recv_size=1 << 24))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        cfg = load_config(path)
    assert cfg.source == path
    assert cfg.name == cfg.user == NAME
    assert cfg.target == "127.0.0.1:8001"
    assert cfg.server_name == DEFAULT_SERVER_NAME
    assert cfg.max_grpc_recv_size == 1 << 24
    assert cfg.ca.subject == pki.ca.certificate.subject
    assert cfg.certificate.serial_number == pki.good.certificate.serial_number
    assert cfg.expires_at == pki.good.certificate.not_valid_after_utc
    assert cfg.expires_at.tzinfo is not None
    der = pki.ca.certificate.public_bytes(serialization.Encoding.DER)
    assert cfg.ca_fingerprint == hashlib.sha256(der).hexdigest()
    assert same_key(cfg.client_private_key, pki.good)


def test_describe_and_masking(pki: PKI, tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path / "api.yaml", pki.config()))
    info = cfg.describe()
    assert set(info) == {"user", "server", "server name", "source", "expires", "CA fingerprint"}
    assert info["user"] == NAME and info["server"] == "127.0.0.1:8001"
    assert info["source"] == str(tmp_path / "api.yaml")
    assert re.search(r"\d{4}-\d\d-\d\d .*UTC \(36[45] days left\)", info["expires"])
    for text in (repr(cfg), str(cfg), str(info), f"{cfg}", f"{cfg!r}"):
        assert "<masked>" in text or text == str(info)
        assert "BEGIN" not in text
        assert_no_secret(text, pki.good.key_pem, cfg.client_private_key)
    assert "client_private_key=<masked>" in repr(cfg)
    assert dataclasses.replace(cfg, source=None).describe()["source"] == "<in memory>"


def test_pinned_server_name(pki: PKI) -> None:
    cfg = config_from_dict(pki.config(pinned_server_name="velo.example.com"))
    assert cfg.server_name == "velo.example.com"
    assert cfg.describe()["server name"] == "velo.example.com"


@pytest.mark.parametrize(
    ("conn", "target"),
    [
        ("unix:///var/run/velo/api.sock", "unix:///var/run/velo/api.sock"),
        ("unix://velo/api.sock", "unix:velo/api.sock"),  # relative: resolved against the cwd
        ("unix:api.sock", "unix:api.sock"),
        ("velo.example.com:8001", "velo.example.com:8001"),
        ("[::1]:8001", "[::1]:8001"),
        ("  10.0.0.1:443 ", "10.0.0.1:443"),
        ("dns:///velo.example.com:8001", "dns:///velo.example.com:8001"),
    ],
)
def test_connection_strings(pki: PKI, conn: str, target: str) -> None:
    assert config_from_dict(pki.config(connection_string=conn)).target == target


@pytest.mark.parametrize(
    "conn", ["https://velo.example.com:8889/", "velo.example", "host:99999", "unix://", "::1:80"]
)
def test_bad_connection_strings(pki: PKI, conn: str) -> None:
    with pytest.raises(ConfigError, match="api_connection_string"):
        config_from_dict(pki.config(connection_string=conn))


def test_name_cn_mismatch_warns(pki: PKI) -> None:
    with pytest.warns(ConfigWarning, match="'bob'.*CommonName 'analyst'"):
        cfg = config_from_dict(pki.config(name="bob"))
    assert cfg.user == NAME and cfg.name == "bob"


def test_missing_name_falls_back_to_cn(pki: PKI) -> None:
    data = pki.config()
    del data["name"]
    assert config_from_dict(data).name == NAME


def test_unknown_keys_warn(pki: PKI) -> None:
    with pytest.warns(ConfigWarning, match="unknown key.*comment.*velociraptor CLI would refuse"):
        cfg = config_from_dict({**pki.config(), "comment": "prod box"})
    assert cfg.name == NAME


def test_max_grpc_recv_size_validated(pki: PKI) -> None:
    cfg = config_from_dict(pki.config() | {"max_grpc_recv_size": "1024"})
    assert cfg.max_grpc_recv_size == 1024
    for bad in (-1, "lots", True, 1.5):
        with pytest.raises(ConfigError, match="max_grpc_recv_size"):
            config_from_dict(pki.config() | {"max_grpc_recv_size": bad})


# --- discovery ------------------------------------------------------------------------------------


def _configs(pki: PKI, tmp_path: Path, *names: str) -> dict[str, Path]:
    return {n: write(tmp_path / f"{n}.yaml", pki.config()) for n in names}


@pytest.mark.parametrize(
    "winner", ["VELONB_API_CONFIG", "VELOCIRAPTOR_API_FILE", "VELOCIRAPTOR_API_CONFIG"]
)
def test_env_var_precedence(
    pki: PKI, tmp_path: Path, isolated: Path, monkeypatch: pytest.MonkeyPatch, winner: str
) -> None:
    order = ["VELONB_API_CONFIG", "VELOCIRAPTOR_API_FILE", "VELOCIRAPTOR_API_CONFIG"]
    paths = _configs(pki, tmp_path, *order)
    for var in order[order.index(winner) :]:
        monkeypatch.setenv(var, str(paths[var]))
    save_profile("prod", paths[winner])
    monkeypatch.setenv("VELONB_PROFILE", "prod")
    write(isolated / ".pyvelociraptorrc", pki.config())
    assert discover_config_path() == paths[winner]
    assert load_config().source == paths[winner]


def test_env_profile_then_rc(
    pki: PKI, tmp_path: Path, isolated: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rc = write(isolated / ".pyvelociraptorrc", pki.config())
    assert discover_config_path() == rc
    saved = save_profile("prod", write(tmp_path / "p.yaml", pki.config()))
    monkeypatch.setenv("VELONB_PROFILE", "prod")
    assert discover_config_path() == saved


def test_env_var_tilde_expanded(pki: PKI, isolated: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(isolated / "velo" / "api.yaml", pki.config())
    monkeypatch.setenv("VELOCIRAPTOR_API_FILE", "~/velo/api.yaml")
    assert discover_config_path() == path


def test_explicit_profile_and_path_win(
    pki: PKI, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    paths = _configs(pki, tmp_path, "env", "prof", "explicit")
    monkeypatch.setenv("VELONB_API_CONFIG", str(paths["env"]))
    saved = save_profile("prod", paths["prof"])
    assert discover_config_path("prod") == saved
    assert load_config(profile="prod").source == saved
    assert load_config(paths["explicit"], profile="prod").source == paths["explicit"]
    assert load_config(str(paths["explicit"])).source == paths["explicit"]


@pytest.mark.parametrize("var", ["VELONB_API_CONFIG", "VELOCIRAPTOR_API_FILE"])
def test_env_var_to_missing_file(
    tmp_path: Path, isolated: Path, monkeypatch: pytest.MonkeyPatch, var: str
) -> None:
    monkeypatch.setenv(var, str(tmp_path / "nope.yaml"))
    (isolated / ".pyvelociraptorrc").write_text("x")  # must not be used as a fallback
    with pytest.raises(ConfigNotFoundError, match=rf"\${var} points to .*nope\.yaml"):
        load_config()


def test_missing_profile(pki: PKI, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    save_profile("lab", write(tmp_path / "lab.yaml", pki.config()))
    with pytest.raises(ConfigNotFoundError, match=r"profile 'prod'.*profiles: lab") as err:
        load_config(profile="prod")
    assert "save_profile" in str(err.value)
    monkeypatch.setenv("VELONB_PROFILE", "staging")
    with pytest.raises(ConfigNotFoundError, match=r"'staging' \(\$VELONB_PROFILE\)"):
        discover_config_path()


@pytest.mark.parametrize("bad", ["../etc/passwd", "a/b", ".hidden", ""])
def test_bad_profile_name(tmp_path: Path, bad: str) -> None:
    with pytest.raises(ConfigError, match="profile"):
        save_profile(bad, tmp_path / "x.yaml")


def test_nothing_found_lists_places(isolated: Path) -> None:
    with pytest.raises(ConfigNotFoundError) as err:
        load_config()
    msg = str(err.value)
    places = [
        "$VELONB_API_CONFIG",
        "$VELOCIRAPTOR_API_FILE",
        "$VELOCIRAPTOR_API_CONFIG",
        "$VELONB_PROFILE",
        str(isolated / ".pyvelociraptorrc"),
    ]
    positions = [msg.index(place) for place in places]
    assert positions == sorted(positions)
    assert str(profile_dir()) in msg
    assert "config api_client --name NAME --role api" in msg
    assert "velonb emulator" in msg


def test_explicit_missing_path(tmp_path: Path) -> None:
    with pytest.raises(ConfigNotFoundError, match=r"nope\.yaml does not exist"):
        load_config(tmp_path / "nope.yaml")


def test_save_profile_permissions(pki: PKI, tmp_path: Path) -> None:
    src = write(tmp_path / "api.yaml", pki.config())
    saved = save_profile("prod", src)
    assert saved == profile_dir() / "prod.yaml"
    assert saved.is_relative_to(tmp_path / "home" / ".config")
    assert saved.read_bytes() == src.read_bytes()
    assert saved.stat().st_mode & 0o777 == 0o600
    assert saved.parent.stat().st_mode & 0o777 == 0o700
    write(src, pki.config(connection_string="10.1.1.1:8001"))
    assert load_config(save_profile("prod", src)).target == "10.1.1.1:8001"  # replaced
    assert list(saved.parent.iterdir()) == [saved]  # no temp files left
    with pytest.raises(ConfigError, match=r"missing required key.*client_cert"):
        save_profile("bad", write(tmp_path / "bad.yaml", {"ca_certificate": pki.ca.cert_pem}))


# --- bad files ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "match"),
    [
        ("", "file is empty"),
        ("# only a comment\n", "file is empty"),
        ("- a\n- b\n", "must be a YAML mapping.*got list"),
        ("just a string", "must be a YAML mapping.*got str"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "is binary"),
        (b"\xff\xfe\xfd garbage \xc3\x28", "is binary"),
        ("ca_certificate: [unclosed\n", "not valid YAML.*line"),
        ("a: 1\n---\nb: 2\n", "not valid YAML"),
    ],
)
def test_not_a_config(tmp_path: Path, content: str | bytes, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        load_config(write(tmp_path / "api.yaml", content))


def test_missing_keys_listed(pki: PKI) -> None:
    data = pki.config()
    del data["client_cert"], data["api_connection_string"]
    data["ca_certificate"] = ""
    with pytest.raises(ConfigError) as err:
        config_from_dict(data)
    assert "missing required key(s): ca_certificate, client_cert, api_connection_string" in str(
        err.value
    )
    assert_no_secret(str(err.value), pki.good.key_pem)


@pytest.mark.parametrize("key", ["ca_certificate", "client_cert", "client_private_key", "name"])
def test_wrong_types(pki: PKI, key: str) -> None:
    with pytest.raises(ConfigError, match=f"{key} must be a string, got list"):
        config_from_dict(pki.config() | {key: ["x"]})


def test_not_a_mapping_in_memory() -> None:
    with pytest.raises(ConfigError, match="must be a mapping"):
        config_from_dict(["a"])  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("key", "value", "match"),
    [
        (
            "ca_certificate",
            "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
            "ca_certificate is not a valid PEM certificate",
        ),
        ("client_cert", "not a pem", "client_cert is not a valid PEM certificate"),
        ("client_private_key", "garbage", "client_private_key is not a PEM private key"),
        (
            "client_private_key",
            # A truncated, garbage key block (built in pieces: no tracked file holds a key block).
            "-----BEGIN RSA " + "PRIVATE KEY-----\nQUJD\n-----END RSA PRIV",
            "client_private_key could not be parsed",
        ),
    ],
)
def test_bad_pem(pki: PKI, key: str, value: str, match: str) -> None:
    with pytest.raises(ConfigError, match=match) as err:
        config_from_dict(pki.config() | {key: value})
    assert_no_secret(str(err.value), pki.good.key_pem)
    assert err.value.__context__ is None or err.value.__suppress_context__


def test_swapped_key_and_cert(pki: PKI) -> None:
    data = pki.config() | {"client_cert": pki.good.key_pem}
    with pytest.raises(ConfigError, match="client_cert holds a private key") as err:
        config_from_dict(data)
    assert_no_secret(str(err.value), pki.good.key_pem)


def test_wrong_ca(pki: PKI) -> None:
    with pytest.raises(ConfigError, match="client_cert was not issued by ca_certificate"):
        config_from_dict(pki.config(pki.foreign))


def test_key_cert_mismatch(pki: PKI) -> None:
    data = pki.config() | {"client_private_key": pki.expired.key_pem}
    with pytest.raises(ConfigError, match="client_private_key does not match client_cert") as err:
        config_from_dict(data)
    assert_no_secret(str(err.value), pki.expired.key_pem, pki.good.key_pem)


def test_expired(pki: PKI) -> None:
    with pytest.raises(CertificateExpiredError) as err:
        config_from_dict(pki.config(pki.expired))
    expiry = pki.expired.certificate.not_valid_after_utc
    assert f"expired on {expiry:%Y-%m-%d %H:%M} UTC" in str(err.value)
    assert "config api_client --name analyst --role api" in str(err.value)


def test_not_yet_valid(pki: PKI) -> None:
    with pytest.raises(CertificateExpiredError, match=r"(?s)not valid before .*clock"):
        config_from_dict(pki.config(pki.future))


def test_expiring_soon_warns(pki: PKI) -> None:
    expiry = pki.soon.certificate.not_valid_after_utc
    with pytest.warns(ConfigWarning, match=f"expires on {expiry:%Y-%m-%d}.*4 days left") as rec:
        cfg = config_from_dict(pki.config(pki.soon))
    assert cfg.describe()["expires"].endswith("(4 days left)")
    assert rec[0].filename == __file__  # attributed to the caller, not to config.py


@pytest.mark.skipif(os.name != "posix", reason="POSIX file modes")
def test_open_permissions_warn(pki: PKI, tmp_path: Path) -> None:
    path = write(tmp_path / "api.yaml", pki.config(), mode=0o644)
    with pytest.warns(ConfigWarning, match=rf"chmod 600 {re.escape(str(path))}"):
        load_config(path)


def test_too_large_and_not_regular(tmp_path: Path) -> None:
    big = write(tmp_path / "big.yaml", "a: " + "x" * (1 << 20) + "\n")
    with pytest.raises(ConfigError, match="1 MiB"):
        load_config(big)
    with pytest.raises(ConfigError, match="not a regular file"):
        load_config(tmp_path)


def test_alias_bomb_refused_fast(tmp_path: Path) -> None:
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, 10):
        prev, cur = chr(ord("a") + i - 1), chr(ord("a") + i)
        lines.append(f"{cur}: &{cur} [{', '.join([f'*{prev}'] * 9)}]")
    path = write(tmp_path / "bomb.yaml", "\n".join(lines) + "\n")
    start = time.perf_counter()
    with pytest.raises(ConfigError, match="aliases"):
        load_config(path)
    assert time.perf_counter() - start < 1.0


def test_merge_key_and_deep_nesting_refused(pki: PKI, tmp_path: Path) -> None:
    merge = "base: &b {name: x}\nother:\n  <<: *b\n"
    with pytest.raises(ConfigError, match="aliases"):
        load_config(write(tmp_path / "merge.yaml", merge))
    deep = "a: " + "[" * 5000 + "]" * 5000 + "\n"
    start = time.perf_counter()
    with pytest.raises(ConfigError, match="nested too deeply"):
        load_config(write(tmp_path / "deep.yaml", deep))
    assert time.perf_counter() - start < 1.0


def test_yaml_error_does_not_echo_content(pki: PKI, tmp_path: Path) -> None:
    lines = write_yaml(tmp_path / "ok.yaml", pki.config()).read_text().splitlines()
    at = lines.index("client_private_key: |") + 2
    lines[at] = lines[at].lstrip()  # a base64 line of the key loses its indentation
    broken = "\n".join(lines) + "\n"
    with pytest.raises(yaml.YAMLError) as raw:
        yaml.safe_load(broken)
    assert lines[at][:20] in str(raw.value)  # plain PyYAML would echo the key line
    with pytest.raises(ConfigError, match="not valid YAML") as err:
        load_config(write(tmp_path / "api.yaml", broken))
    assert_no_secret(str(err.value), pki.good.key_pem)
    assert lines[at][:20] not in str(err.value)
    assert err.value.__suppress_context__


# --- encrypted keys -------------------------------------------------------------------------------


@pytest.fixture
def enc_path(pki: PKI, tmp_path: Path) -> Path:
    assert "ENCRYPTED" in pki.encrypted.key_pem
    return write(tmp_path / "enc.yaml", pki.config(pki.encrypted))


def _assert_decrypted(cfg: ApiClientConfig, pki: PKI) -> None:
    assert "ENCRYPTED" not in cfg.client_private_key
    assert same_key(cfg.client_private_key, pki.encrypted)


class FakePrompt:
    """Stands in for getpass.getpass: answers in order and records the prompts."""

    def __init__(self, *answers: str) -> None:
        self.answers = list(answers)
        self.prompts: list[str] = []

    def __call__(self, prompt: str = "Password: ", stream: Any = None) -> str:
        self.prompts.append(prompt)
        return self.answers.pop(0)


class TTY(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture
def tty(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stdin", TTY())


def test_password_argument(pki: PKI, enc_path: Path) -> None:
    cfg = load_config(enc_path, password=PASSWORD, prompt=False)
    _assert_decrypted(cfg, pki)
    assert_no_secret(repr(cfg) + str(cfg.describe()), pki.encrypted.key_pem)


def test_password_env(pki: PKI, enc_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VELONB_KEY_PASSWORD", PASSWORD)
    _assert_decrypted(load_config(enc_path, prompt=False), pki)


def test_wrong_password_argument_and_env(enc_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(KeyPasswordError, match=r"wrong password.*password argument") as err:
        load_config(enc_path, password="nope")
    assert "nope" not in str(err.value)
    monkeypatch.setenv("VELONB_KEY_PASSWORD", "nope2")
    with pytest.raises(KeyPasswordError, match=r"wrong password.*\$VELONB_KEY_PASSWORD"):
        load_config(enc_path)


def test_no_password_non_interactive(enc_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    prompt = FakePrompt(PASSWORD)
    monkeypatch.setattr("getpass.getpass", prompt)
    for allowed in (True, False):
        with pytest.raises(KeyPasswordError, match=r"(?s)encrypted and no password.*KEY_PASSWORD"):
            load_config(enc_path, prompt=allowed)
    assert prompt.prompts == []


def test_prompt_disabled_even_on_tty(
    enc_path: Path, monkeypatch: pytest.MonkeyPatch, tty: None
) -> None:
    monkeypatch.setattr("getpass.getpass", FakePrompt(PASSWORD))
    with pytest.raises(KeyPasswordError):
        load_config(enc_path, prompt=False)


def test_getpass_prompt(
    pki: PKI, enc_path: Path, monkeypatch: pytest.MonkeyPatch, tty: None
) -> None:
    prompt = FakePrompt("wrong", PASSWORD)
    monkeypatch.setattr("getpass.getpass", prompt)
    _assert_decrypted(load_config(enc_path), pki)
    assert len(prompt.prompts) == 2
    assert "enc.yaml" in prompt.prompts[0] and "2 of 3" in prompt.prompts[1]


def test_getpass_three_wrong_tries(
    enc_path: Path, monkeypatch: pytest.MonkeyPatch, tty: None
) -> None:
    prompt = FakePrompt("a", "b", "c", PASSWORD)
    monkeypatch.setattr("getpass.getpass", prompt)
    with pytest.raises(KeyPasswordError, match="3 tries") as err:
        load_config(enc_path)
    assert len(prompt.prompts) == 3 and prompt.answers == [PASSWORD]
    assert_no_secret(str(err.value))


def test_getpass_in_jupyter(pki: PKI, enc_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ipython = pytest.importorskip("IPython")
    shell = type("Shell", (), {"kernel": object()})()
    monkeypatch.setattr(ipython, "get_ipython", lambda: shell)
    prompt = FakePrompt(PASSWORD)
    monkeypatch.setattr("getpass.getpass", prompt)
    _assert_decrypted(load_config(enc_path), pki)
    assert len(prompt.prompts) == 1


def test_getpass_eof(enc_path: Path, monkeypatch: pytest.MonkeyPatch, tty: None) -> None:
    def eof(prompt: str = "") -> str:
        raise EOFError

    monkeypatch.setattr("getpass.getpass", eof)
    with pytest.raises(KeyPasswordError):
        load_config(enc_path)


def test_pkcs8_encrypted_key(pki: PKI) -> None:
    key = serialization.load_pem_private_key(pki.good.key_pem.encode(), None)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(PASSWORD.encode()),
    ).decode()
    assert "ENCRYPTED PRIVATE KEY" in pem
    cfg = config_from_dict(pki.config() | {"client_private_key": pem}, password=PASSWORD)
    assert cfg.client_private_key.startswith("-----BEGIN RSA " + "PRIVATE KEY-----")


def test_yaml_roundtrip_is_plain_safe_load(pki: PKI, tmp_path: Path) -> None:
    """The file velociraptor/pki writes parses to exactly the dict config_from_dict gets."""
    path = write(tmp_path / "api.yaml", pki.config())
    data = yaml.safe_load(path.read_text())
    assert load_config(path) == config_from_dict(data, source=path)
    assert isinstance(load_config(path).certificate, x509.Certificate)
    assert cfgmod.MAX_CONFIG_BYTES == 1 << 20


def test_expired_checked_before_password_prompt(
    pki: PKI, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tty: None
) -> None:
    now = dt.datetime.now(dt.UTC)
    old = pki.ca.issue(NAME, not_before=now - dt.timedelta(days=9), valid_days=1, password="pw")
    prompt = FakePrompt("pw")
    monkeypatch.setattr("getpass.getpass", prompt)
    with pytest.raises(CertificateExpiredError):
        load_config(write(tmp_path / "old.yaml", pki.config(old)))
    assert prompt.prompts == []


@pytest.mark.skipif(os.name != "posix", reason="POSIX file modes")
def test_warnings_point_at_the_caller(pki: PKI, tmp_path: Path) -> None:
    path = write(tmp_path / "api.yaml", pki.config(pki.soon), mode=0o640)
    with pytest.warns(ConfigWarning) as rec:
        load_config(path)
    assert len(rec) == 2 and {w.filename for w in rec} == {__file__}
    assert_no_secret(" ".join(str(w.message) for w in rec), pki.soon.key_pem)
