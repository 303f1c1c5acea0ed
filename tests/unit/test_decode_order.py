"""velonb.query keeps the rows of concurrently decoded parts in order, with no gap."""

from __future__ import annotations

import threading
from concurrent.futures import Future, ThreadPoolExecutor

import pytest

from velonb.errors import ResponseDecodeError
from velonb.frames import FrameBuilder
from velonb.query import QueryResult, _decode_part, _drain_quietly


def _part(start: int, n: int = 3) -> bytes:
    return ("[" + ",".join(f'{{"n":{i}}}' for i in range(start, start + n)) + "]").encode()


def test_drain_keeps_decoded_parts_in_order_up_to_the_first_failure():
    builder = FrameBuilder()
    failed = threading.Event()
    with ThreadPoolExecutor(2) as pool:
        pending: list[tuple[Future, FrameBuilder]] = [
            (pool.submit(_decode_part, builder, payload, ["n"], i, failed), builder)
            for i, payload in enumerate([_part(0), _part(3), b'[{"n":', _part(9)])
        ]
        _drain_quietly(pending, QueryResult(vql="", org_id=""))
    assert pending == []
    assert builder.to_frame()["n"].tolist() == [0, 1, 2, 3, 4, 5]  # nothing after the bad part


def test_drain_of_an_export_counts_the_rows_up_to_the_first_failure():
    """query_to_parquet's parts (tables) are not kept after a failure, only counted."""
    builder = FrameBuilder()
    failed = threading.Event()
    result = QueryResult(vql="", org_id="")
    with ThreadPoolExecutor(2) as pool:
        pending: list[tuple[Future, FrameBuilder]] = [
            (pool.submit(_decode_part, builder, payload, ["n"], i, failed, True), builder)
            for i, payload in enumerate([_part(0), _part(3), b'[{"n":', _part(9)])
        ]
        _drain_quietly(pending, result)
    assert result.rows == 6 and builder.rows == 0


def test_decode_error_names_the_part_and_skips_later_parts():
    builder = FrameBuilder()
    failed = threading.Event()
    with pytest.raises(ResponseDecodeError, match="part 7"):
        _decode_part(builder, b"[{", ["n"], 7, failed)
    assert failed.is_set()
    assert _decode_part(builder, _part(0), ["n"], 8, failed) is None


def test_out_of_order_decode_in_order_append():
    builder = FrameBuilder()
    decoded = [builder.decode(_part(3 * i), ["n"], i) for i in range(5)]
    for part in decoded:  # decoded in any order (here all first), appended in order
        builder.append(part)
    assert builder.rows == 15
    assert builder.to_frame()["n"].tolist() == list(range(15))
