"""Identity, refusals (status code + message, in the real order), TLS and unix sockets."""

from __future__ import annotations

import datetime as dt
import os

import grpc
import pytest
from wire_helpers import load_api_config, query_args

from velonb._proto import api_pb2
from velonb.emulator import Emulator
from velonb.emulator.acl import ALL_PERMISSIONS, role_permissions


def query_error(stub, args) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as info:
        list(stub.Query(args, timeout=10))
    return info.value


def test_check_is_serving(raw_stub, api_config):
    response = raw_stub(api_config).Check(api_pb2.HealthCheckRequest(service="x"), timeout=10)
    assert response.status == api_pb2.HealthCheckResponse.SERVING


def test_unknown_user_is_unknown_status(raw_stub, make_config):
    stub = raw_stub(make_config("nobody", roles=None))
    err = query_error(stub, query_args("SELECT * FROM info()"))
    assert err.code() == grpc.StatusCode.UNKNOWN
    assert err.details() == "User not found: nobody"


def test_unknown_org_is_unavailable(raw_stub, api_config):
    err = query_error(raw_stub(api_config), query_args("SELECT 1 FROM scope()", org_id="O999"))
    assert err.code() == grpc.StatusCode.UNAVAILABLE
    assert err.details() == "Org not found"


def test_missing_any_query_is_permission_denied(raw_stub, make_config):
    err = query_error(raw_stub(make_config("reader")), query_args("SELECT 1 FROM scope()"))
    assert err.code() == grpc.StatusCode.PERMISSION_DENIED
    assert err.details() == (
        "Permission denied: User reader requires permission ANY_QUERY to run queries"
    )


def test_user_without_role_in_org_is_denied(raw_stub, api_config):
    err = query_error(raw_stub(api_config), query_args("SELECT 1 FROM scope()", org_id="O1234"))
    assert err.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "apiuser requires permission ANY_QUERY" in err.details()


def test_admin_may_query_second_org(raw_stub, make_config):
    stub = raw_stub(make_config("admin"))
    messages = list(stub.Query(query_args("SELECT 1 FROM scope()", org_id="O1234", max_row=5)))
    assert messages[0].log == "Starting query execution.\n"


def test_checks_run_in_order_org_before_permission(raw_stub, make_config):
    err = query_error(raw_stub(make_config("reader")), query_args("SELECT 1", org_id="nope"))
    assert err.code() == grpc.StatusCode.UNAVAILABLE


def test_empty_query_list_is_unknown_after_permission_check(raw_stub, api_config):
    err = query_error(raw_stub(api_config), query_args())
    assert err.code() == grpc.StatusCode.UNKNOWN
    assert err.details() == "Query should be specified."


def test_superuser_cert_is_allowed_everything(emulator, raw_stub, tmp_path):
    path = emulator.write_api_client_config(tmp_path / "su.yaml", "VelociraptorServer", roles=None)
    messages = list(raw_stub(path).Query(query_args("SELECT 1 FROM scope()", max_row=5)))
    assert messages[0].log == "Starting query execution.\n"


def test_roles_expand_as_in_roles_go():
    assert role_permissions(["api"]) == {"ANY_QUERY", "READ_RESULTS"}
    assert role_permissions(["reader"]) == {"READ_RESULTS"}
    assert "COLLECT_CLIENT" in role_permissions(["investigator"])
    assert "MACHINE_STATE" not in role_permissions(["investigator"])
    admin = role_permissions(["administrator"])
    assert admin == set(ALL_PERMISSIONS) - {"DATASTORE_ACCESS"}
    assert "ORG_ADMIN" not in role_permissions(["administrator"], "O1234")
    with pytest.raises(ValueError, match="Invalid role"):
        role_permissions(["root"])


def test_config_file_is_private_and_complete(emulator, api_config):
    assert os.stat(api_config).st_mode & 0o777 == 0o600
    config = load_api_config(api_config)
    assert list(config) == [
        "ca_certificate",
        "client_cert",
        "client_private_key",
        "api_connection_string",
        "name",
    ]
    assert config["api_connection_string"] == emulator.address


def _handshake_fails(stub) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as info:
        stub.Check(api_pb2.HealthCheckRequest(), timeout=5)
    assert info.value.code() == grpc.StatusCode.UNAVAILABLE
    return info.value


def test_certificate_from_another_ca_is_rejected(emulator, raw_stub, tmp_path):
    with Emulator() as other:  # same CN, different CA; the server key is still our server's
        path = other.write_api_client_config(tmp_path / "x.yaml", "admin", roles=None)
    config = load_api_config(path)
    config["ca_certificate"] = emulator.ca.cert_pem
    config["api_connection_string"] = emulator.address
    import yaml

    path.write_text(yaml.safe_dump(config))
    _handshake_fails(raw_stub(path))


def test_expired_client_certificate_is_rejected(raw_stub, make_config):
    now = dt.datetime.now(dt.UTC)
    path = make_config(
        "apiuser", not_before=now - dt.timedelta(days=10), not_after=now - dt.timedelta(days=1)
    )
    _handshake_fails(raw_stub(path))


def test_client_without_certificate_is_rejected(emulator):
    credentials = grpc.ssl_channel_credentials(root_certificates=emulator.ca.cert_pem.encode())
    options = [("grpc.ssl_target_name_override", "VelociraptorServer")]
    with grpc.secure_channel(emulator.address, credentials, options=options) as channel:
        from velonb._proto import api_pb2_grpc

        _handshake_fails(api_pb2_grpc.APIStub(channel))


def test_unix_socket(raw_stub, tmp_path):
    socket_path = tmp_path / "api.sock"
    with Emulator(unix_socket=socket_path, users={"bob": ["api"]}) as emu:
        assert emu.address == f"unix://{socket_path}"
        path = emu.write_api_client_config(tmp_path / "u.yaml", "bob", roles=None)
        assert load_api_config(path)["api_connection_string"].startswith("unix:///")
        messages = list(raw_stub(path).Query(query_args("SELECT * FROM range(end=2)", max_row=5)))
        assert messages[-1].Response == '[{"_value":0},{"_value":1}]'
        assert os.stat(socket_path).st_mode & 0o777 == 0o600
