"""query_to_parquet: results far larger than one batch, schema changes, hive partitions."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

import velonb
from velonb import cache_sink
from velonb.errors import CacheError


@pytest.fixture
def conn(api_config):
    with velonb.connect(api_config) as c:
        yield c


def test_50k_rows_in_1000_row_parts_to_one_file(conn, tmp_path, monkeypatch):
    monkeypatch.setattr(cache_sink, "ROW_GROUP", 8192)
    path = tmp_path / "out.parquet"
    vql = ("SELECT _value AS n, format(format='host-%d', args=_value) AS host, "
           "dict(a=_value) AS d FROM range(end=50000)")
    summary = conn.query_to_parquet(vql, path)
    assert summary.rows == 50000 and summary.parts >= 50 and summary.files == [path]
    table = ds.dataset(path).to_table()
    assert table.num_rows == 50000
    assert table.schema.names == ["n", "host", "d"]
    assert [str(t) for t in table.schema.types] == ["int64", "string", "string"]
    assert pq.ParquetFile(path).metadata.num_row_groups >= 6  # written as it arrived
    assert table.column("n").to_pylist()[-1] == 49999
    assert not list(tmp_path.glob(".out.parquet.tmp-*"))


def test_columns_appearing_and_changing_type_are_merged(conn, tmp_path):
    vql = ("SELECT * FROM chain(a={SELECT _value AS n FROM range(end=3000)}, "
           "b={SELECT _value AS n, 'late' AS extra, "
           "if(condition=_value > 1500, then=format(format='x%d', args=_value), else=_value) "
           "AS mixed FROM range(end=3000)})")
    path = tmp_path / "out.parquet"
    summary = conn.query_to_parquet(vql, path)
    table = ds.dataset(path).to_table()
    assert table.num_rows == 6000 == summary.rows and summary.rewrites >= 1
    assert table.schema.names == ["n", "extra", "mixed"]
    assert table.schema.field("mixed").type == pa.string()
    assert table.column("extra").null_count == 3000
    mixed = table.column("mixed").to_pylist()
    assert mixed[3000] == "0" and mixed[-1] == "x2999"


def test_hive_partitioned_dataset(conn, tmp_path):
    vql = ("SELECT _value AS n, format(format='g%d', args=int(int=_value / 1000)) AS grp, "
           "if(condition=_value > 4000, then='late') AS note FROM range(end=5000)")
    path = tmp_path / "hunt"
    summary = conn.query_to_parquet(vql, path, partition_by="grp")
    dirs = sorted(p.name for p in path.iterdir())
    assert dirs == [f"grp=g{i}" for i in range(5)]
    table = ds.dataset(path, partitioning="hive").to_table()
    assert table.num_rows == 5000 == summary.rows
    assert set(table.schema.names) == {"n", "note", "grp"}
    assert table.filter(ds.field("grp") == "g4").num_rows == 1000
    with pytest.raises(CacheError, match="exists"):
        conn.query_to_parquet(vql, path, partition_by="grp")
    assert conn.query_to_parquet(vql, path, partition_by="grp", overwrite=True).rows == 5000


def test_many_partitions_and_a_late_column(conn, tmp_path):
    vql = ("SELECT _value AS n, format(format='%d', args=int(int=_value / 20)) AS grp, "
           "if(condition=_value > 2500, then=dict(k=_value)) AS late FROM range(end=3000)")
    path = tmp_path / "many"
    summary = conn.query_to_parquet(vql, path, partition_by=["grp"])
    assert len(list(path.iterdir())) == 150 > cache_sink.MAX_OPEN_FILES
    table = ds.dataset(path, partitioning="hive").to_table()
    assert table.num_rows == 3000 == summary.rows
    assert table.schema.field("late").type == pa.string()
    assert table.column("late").null_count == 2501
    for file in summary.files:  # every file has the one merged schema
        assert pq.read_schema(file).names == ["n", "late"]


def test_a_full_disk_mid_export_is_a_named_error_and_keeps_nothing(conn, tmp_path, monkeypatch):
    """sink.write_table runs on its own thread: its OSError reaches the caller as a CacheError, the
    server query is cancelled, no output or temporary directory is left, and the connection
    still works."""
    import errno

    real_write = cache_sink.ParquetSink.write_table
    calls = []

    def write(self, table):
        calls.append(table.num_rows)
        if len(calls) == 5:
            raise OSError(errno.ENOSPC, "No space left on device")
        real_write(self, table)

    monkeypatch.setattr(cache_sink.ParquetSink, "write_table", write)
    path = tmp_path / "out.parquet"
    with pytest.raises(CacheError, match="No space left on device") as info:
        conn.query_to_parquet("SELECT _value AS n FROM range(end=200000)", path)
    assert "no output was kept" in str(info.value) and info.value.hint
    assert not path.exists() and not list(tmp_path.glob(".out.parquet.tmp-*"))
    assert len(calls) < 200  # the stream stopped: not every part was handed over
    assert conn.query("SELECT 1 AS one FROM scope()")["one"].tolist() == [1]


def test_max_rows_cuts_the_export_exactly(conn, tmp_path):
    path = tmp_path / "cut.parquet"
    summary = conn.query_to_parquet("SELECT _value AS n FROM range(end=20000)", path,
                                    max_rows=2500)
    assert summary.rows == 2500 and summary.truncated
    assert pq.read_table(path).column("n").to_pylist() == list(range(2500))
    whole = conn.query_to_parquet("SELECT _value AS n FROM range(end=2000)", path,
                                  max_rows=2000, overwrite=True)
    assert whole.rows == 2000 and not whole.truncated


def test_export_equals_the_decoded_frames(conn, tmp_path):
    """The direct part -> Arrow path writes what the DataFrame of the same query holds."""
    vql = ("SELECT _value AS n, format(format='h%d', args=_value) AS host, _value / 3 AS f, "
           "dict(MD5=format(format='%x', args=int(int=_value / 500)), ok=true) AS hash, "
           "timestamp(epoch=1700000000 + _value) AS t, if(condition=_value > 2990, "
           "then='x') AS sparse FROM range(end=3000)")
    path = tmp_path / "eq.parquet"
    conn.query_to_parquet(vql, path)
    expected = cache_sink.frame_to_arrow(conn.query(vql))
    got = pq.read_table(path)
    assert got.schema == expected.schema
    assert got.to_pylist() == expected.to_pylist()


def test_interrupted_export_cancels_and_keeps_nothing(conn, tmp_path):
    import os
    import signal
    import threading

    from velonb.errors import QueryInterrupted

    path = tmp_path / "stopped.parquet"
    timer = threading.Timer(1.5, os.kill, (os.getpid(), signal.SIGINT))
    timer.start()
    try:
        with pytest.raises(QueryInterrupted) as info:
            conn.query_to_parquet("SELECT _value AS n, sleep(ms=20) FROM range(end=100000)",
                                  path)
    finally:
        timer.cancel()
    assert "nothing was written" in str(info.value) and "cancelled" in str(info.value)
    assert not path.exists() and not list(tmp_path.glob(".stopped.parquet.tmp-*"))
    assert conn.query("SELECT 1 AS one FROM scope()")["one"].tolist() == [1]


def test_every_select_of_the_query_lands_in_one_export(conn, tmp_path):
    """Two SELECTs (each decoded with its own schema hints) and a LET: one merged output."""
    vql = ("LET small = SELECT * FROM range(end=1500)\n"
           "SELECT _value AS a FROM small\n"
           "SELECT _value AS a, format(format='b%d', args=_value) AS b FROM range(end=2500)\n")
    path = tmp_path / "two.parquet"
    summary = conn.query_to_parquet(vql, path, max_rows=3000)
    table = pq.read_table(path)
    assert summary.rows == 3000 == table.num_rows and summary.truncated
    assert table.column("a").to_pylist() == list(range(1500)) + list(range(1500))
    assert table.column("b").to_pylist() == [None] * 1500 + [f"b{i}" for i in range(1500)]
