"""The Query RPC's exact message sequence, read with a raw grpc client."""

from __future__ import annotations

import json
import re
import time

import pytest
from wire_helpers import query_args

PART_LOG = re.compile(r"^Time (\d+): (.*): Sending response part (\d+) (.+) \((\d+) rows\)\.\n$")


def run(stub, *vql, **fields):
    return list(stub.Query(query_args(*vql, **fields), timeout=30))


def logs(messages):
    return [m.log for m in messages if m.log]


def parts(messages):
    return [m for m in messages if not m.log]


@pytest.fixture
def stub(raw_stub, api_config):
    return raw_stub(api_config)


def test_first_message_is_start_log_and_parts_are_announced(stub):
    messages = run(stub, "SELECT * FROM range(end=3)", max_row=2, max_wait=1)
    assert messages[0].log == "Starting query execution.\n"
    assert messages[0].timestamp > 1_600_000_000_000_000  # microseconds
    assert not messages[0].Response and not messages[0].Columns
    kinds = ["log" if m.log else "part" for m in messages]
    assert kinds == ["log", "log", "part", "log", "part"]
    first, second = parts(messages)
    assert first.Response == '[{"_value":0},{"_value":1}]'
    assert second.Response == '[{"_value":2}]'
    assert [p.part for p in (first, second)] == [0, 1]
    assert list(first.Columns) == ["_value"]
    assert first.Query.Name == "Test" and first.Query.VQL == "SELECT * FROM range(end=3)"
    assert first.total_rows == 0 and first.query_id == 0
    assert messages[1].log == "Time 0: Test: Sending response part 0 27 B (2 rows).\n"
    assert messages[3].log == "Time 0: Test: Sending response part 1 14 B (1 rows).\n"
    assert messages[1].timestamp >= first.timestamp  # Go stamps the part, then logs


def test_part_log_humanizes_bytes(stub):
    messages = run(stub, "SELECT * FROM range(end=200)", max_row=1000, max_wait=1)
    (part,) = parts(messages)
    size = len(part.Response.encode())
    assert size == 2 + 200 * 11 + sum(len(str(i)) for i in range(200)) + 199
    expected = f"Time 0: Test: Sending response part 0 {size / 1000:.1f} kB (200 rows).\n"
    assert logs(messages)[1] == expected


def test_empty_select_still_ships_one_empty_part(stub):
    messages = run(stub, "SELECT * FROM range(end=0)", max_row=10, max_wait=1)
    (part,) = parts(messages)
    assert part.Response == "[]" and list(part.Columns) == [] and part.part == 0
    assert logs(messages)[-1] == "Time 0: Test: Sending response part 0 2 B (0 rows).\n"


def test_max_row_zero_ships_empty_part_first_then_one_row_each(stub):
    messages = run(stub, "SELECT * FROM range(end=3)", max_wait=1)
    responses = [p.Response for p in parts(messages)]
    assert responses == ["[]", '[{"_value":0}]', '[{"_value":1}]', '[{"_value":2}]']
    assert [p.part for p in parts(messages)] == [0, 1, 2, 3]


def test_max_row_batches_exactly(stub):
    messages = run(stub, "SELECT * FROM range(end=25)", max_row=10, max_wait=5)
    counts = [len(json.loads(p.Response)) for p in parts(messages)]
    assert counts == [10, 10, 5]
    rows = [int(PART_LOG.match(line).group(5)) for line in logs(messages)[1:]]
    assert rows == counts


def test_max_wait_ships_partial_batches_while_the_plugin_blocks(stub):
    start = time.monotonic()
    messages = run(
        stub, "SELECT _value, sleep(ms=400) AS Slept FROM range(end=5)", max_row=1000, max_wait=1
    )
    elapsed = time.monotonic() - start
    batches = [len(json.loads(p.Response)) for p in parts(messages)]
    assert sum(batches) == 5 and len(batches) >= 2, batches
    assert elapsed < 4
    assert list(parts(messages)[0].Columns) == ["_value", "Slept"]


def test_columns_follow_each_part_first_row(stub):
    vql = (
        "SELECT * FROM chain(a={SELECT _value AS A FROM range(end=2)}, "
        "b={SELECT _value AS B, 'x' AS C FROM range(end=2)})"
    )
    messages = run(stub, vql, max_row=2, max_wait=1)
    assert [list(p.Columns) for p in parts(messages)] == [["A"], ["B", "C"]]
    assert parts(messages)[1].Response == '[{"B":0,"C":"x"},{"B":1,"C":"x"}]'


def test_query_id_counts_lets_and_restarts_per_request(stub):
    messages = run(
        stub,
        "LET a = SELECT * FROM range(end=2) SELECT * FROM a",
        "LET b = SELECT * FROM range(end=1) SELECT * FROM a SELECT * FROM b",
        max_row=100,
        max_wait=1,
    )
    got = [(p.Query.VQL[:5], p.query_id, p.part, p.Response) for p in parts(messages)]
    assert got == [
        ("LET a", 1, 0, '[{"_value":0},{"_value":1}]'),
        ("LET b", 1, 0, '[{"_value":0},{"_value":1}]'),  # LET a from request 1 is visible
        ("LET b", 2, 0, '[{"_value":0}]'),
    ]


def test_env_values_are_scope_strings(stub):
    messages = run(stub, "SELECT Foo FROM scope()", env={"Foo": "bar<1>"}, max_wait=1, max_row=10)
    assert parts(messages)[0].Response == '[{"Foo":"bar\\u003c1\\u003e"}]'


def test_parse_error_logs_and_skips_the_rest(stub):
    messages = run(
        stub,
        "SELECT * FROM range(end=1)",
        "SELEKT * FROM nowhere",
        "SELECT * FROM range(end=1)",
        max_row=10,
    )
    assert len(parts(messages)) == 1
    last = messages[-1].log
    assert last.startswith("VQL Error: ") and last.endswith(".\n")


def test_plugin_logs_arrive_in_order(stub):
    messages = run(stub, "SELECT log(message='hello <world>') AS L FROM scope()", max_wait=1)
    assert "DEFAULT:hello <world>\n" in logs(messages)
    assert logs(messages).index("DEFAULT:hello <world>\n") < len(logs(messages)) - 1


def test_api_role_gets_no_info_rows(stub):
    messages = run(stub, "SELECT * FROM info()", max_wait=1, max_row=10)
    assert parts(messages)[-1].Response == "[]"


def test_timeout_logs_cancels_and_ends_ok(stub):
    start = time.monotonic()
    messages = run(
        stub,
        "SELECT _value, sleep(ms=300) AS S FROM range(end=100) SELECT * FROM range(end=3)",
        timeout=1,
        max_row=1000,
        max_wait=10,
    )
    assert time.monotonic() - start < 5
    (timeout_log,) = [line for line in logs(messages) if "Timeout" in line]
    assert re.fullmatch(
        r"collect: <red>Timeout Error:</> Collection timed out after 1(\.\d+)?s\n", timeout_log
    )
    first, second = parts(messages)
    assert 1 <= len(json.loads(first.Response)) < 100  # partial batch flushed
    assert second.Response == "[]" and second.query_id == 1  # the next SELECT runs on a done ctx
    assert messages.index(first) > [m.log for m in messages].index(timeout_log)
    assert not any("Sending response part" in line for line in logs(messages)[2:])


def test_large_response_exceeds_default_4mib(raw_stub, make_config):
    stub = raw_stub(make_config(), options=[("grpc.max_receive_message_length", 64 << 20)])
    messages = run(stub, "SELECT * FROM range(end=400000)", max_row=400000, max_wait=30)
    (part,) = parts(messages)
    assert len(part.Response) > 4 * 1024 * 1024
    assert logs(messages)[-1].endswith(" MB (400000 rows).\n")
