"""Run every contender against the same emulated hunt and print the comparison table.

Run: ``.venv/bin/python benchmarks/run.py [--rows 1000000] [--repeat 3] [--quick]``

The emulator (benchmarks/serve.py) runs in its own process, serving a finished
Windows.System.Pslist hunt of ``--rows`` rows (18 columns: ints, strings, bools, an RFC 3339
time, a nested Hash dict; ~690 bytes of JSON per row). Every contender runs in a fresh process
(benchmarks/contenders/*.py), ``--repeat`` times, round-robin so that machine noise spreads
over all of them; the table shows the median, min-max and the peak RSS (VmHWM) of the
contender's process. See benchmarks/README.md for the contenders and the targets.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
CONTENDERS = HERE / "contenders"
PYVELO_VERSION = "0.1.14"
PYVELO_VENVS = [
    Path.home() / ".cache" / "velonb-bench" / f"venv-pyvelociraptor-{PYVELO_VERSION}",
    Path.home() / ".cache" / "velonb-tests" / f"venv-pyvelociraptor-{PYVELO_VERSION}",
]
ALL = ["floor", "pyvelociraptor", "handloop", "velonb", "cache", "parquet", "import"]


@dataclass
class Runs:
    """The reports of one contender's runs."""

    label: str
    reports: list[dict[str, Any]] = field(default_factory=list)
    error: str = ""

    def values(self, key: str) -> list[float]:
        return [float(r[key]) for r in self.reports if key in r]

    @property
    def median(self) -> float:
        return statistics.median(self.values("seconds")) if self.reports else float("nan")

    @property
    def peak_mb(self) -> float:
        return max(self.values("peak_rss_mb"), default=float("nan"))


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def machine() -> dict[str, str]:
    """nproc, CPU model, memory and the library versions (of this interpreter)."""
    import grpc
    import numpy
    import pandas
    import pyarrow

    cpu = "unknown"
    with open("/proc/cpuinfo") as info:
        for line in info:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem_kb = 0
    with open("/proc/meminfo") as info:
        for line in info:
            if line.startswith("MemTotal:"):
                mem_kb = int(line.split()[1])
    return {
        "nproc": str(os.cpu_count()), "cpu": cpu, "memory": f"{mem_kb / 2**20:.1f} GiB",
        "python": platform.python_version(), "pandas": pandas.__version__,
        "pyarrow": pyarrow.__version__, "numpy": numpy.__version__, "grpcio": grpc.__version__,
        "kernel": platform.release(),
    }


def pyvelociraptor_python(create: bool) -> Path | None:
    """The python of a venv with pyvelociraptor 0.1.14 (made under ~/.cache/velonb-bench)."""
    for venv in PYVELO_VENVS:
        python = venv / "bin" / "python"
        if python.exists():
            return python
    if not create:
        return None
    venv = PYVELO_VENVS[0]
    log(f"creating {venv} with pyvelociraptor=={PYVELO_VERSION} ...")
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run([str(venv / "bin" / "pip"), "install", "-q",
                    f"pyvelociraptor=={PYVELO_VERSION}", "pandas"], check=True)
    return venv / "bin" / "python"


def contender(python: Path | str, script: str, args: dict[str, Any],
              timeout: float) -> dict[str, Any]:
    """Run one contender script in a fresh process; its JSON report."""
    env = {**os.environ, "PYTHONPATH": str(CONTENDERS), "PYTHONDONTWRITEBYTECODE": "1"}
    started = time.perf_counter()
    proc = subprocess.run([str(python), str(CONTENDERS / script), json.dumps(args)],
                          capture_output=True, text=True, timeout=timeout, env=env)
    if proc.returncode != 0:
        raise RuntimeError(f"{script} failed ({proc.returncode}): {proc.stderr.strip()[-2000:]}")
    report: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    report["process_seconds"] = time.perf_counter() - started
    return report


class Server:
    """benchmarks/serve.py in its own process."""

    def __init__(self, rows: int, workdir: Path) -> None:
        config = workdir / "api_client.yaml"
        log(f"starting the emulator with a {rows:,}-row hunt (encoding takes a while) ...")
        self.proc = subprocess.Popen(
            [sys.executable, str(HERE / "serve.py"), "--rows", str(rows),
             "--config-out", str(config)], stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise SystemExit("the emulator did not start")
        self.info: dict[str, Any] = json.loads(line)
        log(f"emulator ready at {self.info['address']} after {self.info['ready_after_s']} s")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def fmt_s(runs: Runs) -> tuple[str, str]:
    values = runs.values("seconds")
    if not values:
        return "n/a", ""
    return f"{statistics.median(values):.3f}", f"{min(values):.3f}-{max(values):.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--quick", action="store_true",
                        help="100k rows, 1 run each, query_to_parquet of 10 x 100k rows")
    parser.add_argument("--parquet-repeat", type=int, default=10,
                        help="query_to_parquet ships the hunt this many times (default 10)")
    parser.add_argument("--only", default=",".join(ALL),
                        help=f"comma-separated subset of {','.join(ALL)}")
    parser.add_argument("--pyvelociraptor-repeat", type=int, default=None,
                        help="runs of the (slow) pyvelociraptor contender (default: --repeat)")
    parser.add_argument("--no-create-venv", action="store_true",
                        help="skip pyvelociraptor when no venv exists instead of creating one")
    parser.add_argument("--json-out", default=None, help="also write the raw reports here")
    args = parser.parse_args()
    if args.quick:
        args.rows, args.repeat = 100_000, 1
    only = [name.strip() for name in args.only.split(",") if name.strip()]
    pyvelo_repeat = args.pyvelociraptor_repeat or args.repeat
    timeout = max(600.0, args.rows / 1000)

    info = machine()
    results: dict[str, Runs] = {}
    notes: list[str] = []
    with tempfile.TemporaryDirectory(prefix="velonb-bench-") as tmp:
        work = Path(tmp)
        server = Server(args.rows, work)
        common = {"config": str(server.info["config"]), "vql": server.info["vql"],
                  "rows": args.rows}
        cache_dir = work / "cache"
        try:
            pyvelo = pyvelociraptor_python(not args.no_create_venv) \
                if "pyvelociraptor" in only else None
            plan: list[tuple[str, str, Path | str, str, dict[str, Any], int]] = []

            def add(key: str, label: str, script: str, extra: dict[str, Any] | None = None,
                    python: Path | str = sys.executable, repeat: int = args.repeat) -> None:
                results[key] = Runs(label)
                plan.append((key, label, python, script, {**common, **(extra or {})}, repeat))

            if "floor" in only:
                add("floor", "(1) floor: raw gRPC stream, 1000-row parts, bytes discarded",
                    "floor.py")
            if "pyvelociraptor" in only:
                if pyvelo is None:
                    results["pyvelociraptor"] = Runs("(2) pyvelociraptor DataFrameQuery",
                                                     error="no pyvelociraptor venv")
                else:
                    add("pyvelociraptor", f"(2) pyvelociraptor {PYVELO_VERSION} DataFrameQuery"
                        " + DataFrame", "pyvelociraptor_df.py", python=pyvelo,
                        repeat=pyvelo_repeat)
            if "handloop" in only:
                add("handloop", "(3) hand-written: 1000-row parts, json.loads, DataFrame",
                    "handloop.py")
            if "velonb" in only:
                add("velonb", "(4) velonb Connection.query", "velonb_query.py")

            # round-robin: run i of every contender, then run i+1 of every contender
            for round_ in range(max([p[5] for p in plan], default=0)):
                for key, label, python, script, cargs, repeat in plan:
                    if round_ >= repeat:
                        continue
                    log(f"run {round_ + 1}: {label} ...")
                    try:
                        report = contender(python, script, cargs, timeout)
                    except (RuntimeError, subprocess.TimeoutExpired) as err:
                        results[key].error = str(err)
                        log(f"  FAILED: {err}")
                        continue
                    results[key].reports.append(report)
                    log(f"  {report['seconds']:.3f} s, {report['rows']:,} rows, "
                        f"peak RSS {report['peak_rss_mb']:.0f} MB")

            if "cache" in only:
                results["cache_store"] = Runs("(5) velonb query, cache=True (live + store)")
                results["cache_rerun"] = Runs("(5) velonb re-run from the cache")
                results["cache_pyarrow"] = Runs("(5) pq.read_table(cache file).to_pandas()")
                try:
                    report = contender(sys.executable, "cached.py",
                                       {**common, "mode": "store", "cache_dir": str(cache_dir)},
                                       timeout)
                    results["cache_store"].reports.append(report)
                    log(f"cache store: {report['seconds']:.3f} s")
                    for round_ in range(max(args.repeat, 3)):
                        for mode in ("rerun", "pyarrow"):
                            report = contender(sys.executable, "cached.py",
                                               {**common, "mode": mode,
                                                "cache_dir": str(cache_dir)}, timeout)
                            results[f"cache_{mode}"].reports.append(report)
                            log(f"run {round_ + 1}: cache {mode}: {report['seconds']:.3f} s")
                except (RuntimeError, subprocess.TimeoutExpired) as err:
                    for key in ("cache_store", "cache_rerun", "cache_pyarrow"):
                        results[key].error = results[key].error or str(err)
                    log(f"  cache contender not available: {err}")

            if "parquet" in only:
                total = args.rows * args.parquet_repeat
                key = "parquet"
                results[key] = Runs(f"(6) velonb query_to_parquet, {total:,} rows")
                try:
                    report = contender(sys.executable, "to_parquet.py",
                                       {**common, "repeat": args.parquet_repeat,
                                        "out": str(work / "out.parquet")}, timeout * 20)
                    results[key].reports.append(report)
                    log(f"query_to_parquet: {report['rows']:,} rows in {report['seconds']:.1f} s,"
                        f" peak RSS {report['peak_rss_mb']:.0f} MB")
                    if report["rows"] != total:
                        results[key].error = f"wrote {report['rows']} rows, expected {total}"
                except (RuntimeError, subprocess.TimeoutExpired) as err:
                    results[key].error = str(err)
                    log(f"  query_to_parquet not available: {err}")
        finally:
            server.stop()

    if "import" in only:
        for module in ("pandas", "velonb", "velonb.query"):
            runs = results[f"import_{module}"] = Runs(f"(7) import {module}")
            for _ in range(max(args.repeat, 5)):
                runs.reports.append(contender(sys.executable, "import_time.py",
                                              {"module": module}, 120))

    print_table(args, info, results, notes)
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(
            {"args": vars(args), "machine": info,
             "results": {k: {"label": r.label, "reports": r.reports, "error": r.error}
                         for k, r in results.items()}}, indent=1))


def print_table(args: argparse.Namespace, info: dict[str, str], results: dict[str, Runs],
                notes: list[str]) -> None:
    def get(key: str) -> Runs | None:
        runs = results.get(key)
        return runs if runs is not None and runs.reports else None

    print(f"\nvelonb benchmark: {args.rows:,} rows, {args.repeat} run(s) each "
          f"(command: {' '.join(['benchmarks/run.py', *sys.argv[1:]])})")
    print(f"machine: {info['nproc']} CPUs ({info['cpu']}), {info['memory']}; Python "
          f"{info['python']}, pandas {info['pandas']}, pyarrow {info['pyarrow']}, numpy "
          f"{info['numpy']}, grpcio {info['grpcio']}\n")
    velonb = get("velonb")
    print("| contender | median s | min-max s | rows/s | peak RSS MB | vs velonb |")
    print("|---|---:|---:|---:|---:|---:|")
    for runs in results.values():
        median, spread = fmt_s(runs)
        if not runs.reports:
            print(f"| {runs.label} | not available: {runs.error[:80]} | | | | |")
            continue
        rows = max(runs.values("rows"), default=0)
        rate = f"{rows / runs.median:,.0f}" if rows else ""
        ratio = f"{runs.median / velonb.median:.2f}x" if velonb and rows else ""
        print(f"| {runs.label} | {median} | {spread} | {rate} | {runs.peak_mb:.0f} | {ratio} |")

    print("\n| target | measured | met |")
    print("|---|---:|:---:|")

    def target(name: str, keys: list[str], value: Callable[..., float], ok: Callable[[float], bool],
               unit: str = "x") -> None:
        runs = [get(k) for k in keys]
        if any(r is None for r in runs):
            print(f"| {name} | not available | - |")
            return
        measured = value(*runs)
        print(f"| {name} | {measured:.2f}{unit} | {'yes' if ok(measured) else 'NO'} |")

    target("velonb time / floor time <= 1.5", ["velonb", "floor"],
           lambda v, f: v.median / f.median, lambda x: x <= 1.5)
    target("pyvelociraptor time / velonb time >= 5", ["pyvelociraptor", "velonb"],
           lambda p, v: p.median / v.median, lambda x: x >= 5)
    target("hand-written loop time / velonb time >= 3", ["handloop", "velonb"],
           lambda h, v: h.median / v.median, lambda x: x >= 3)
    target("velonb peak RSS / pyvelociraptor peak RSS <= 0.33", ["velonb", "pyvelociraptor"],
           lambda v, p: v.peak_mb / p.peak_mb, lambda x: x <= 1 / 3)
    target("live query / cached re-run >= 50", ["velonb", "cache_rerun"],
           lambda v, c: v.median / c.median, lambda x: x >= 50)
    target("cached re-run / pyarrow read of the file <= 1.3", ["cache_rerun", "cache_pyarrow"],
           lambda c, p: c.median / p.median, lambda x: x <= 1.3)
    target(f"query_to_parquet {args.rows * args.parquet_repeat:,} rows: peak RSS < 600 MB",
           ["parquet"], lambda p: p.peak_mb, lambda x: x < 600, " MB")
    target("import velonb / import pandas <= 1.3", ["import_velonb", "import_pandas"],
           lambda v, p: v.median / p.median, lambda x: x <= 1.3)
    for note in notes:
        print(f"\n{note}")


if __name__ == "__main__":
    main()
