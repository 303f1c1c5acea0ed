"""Plots hunters reach for: events over time per host, and stacking (most and least frequent).

Both functions take a DataFrame (a query result) and return a :class:`matplotlib.figure.Figure`
with titles, axis labels and a time axis already set. Counting is done with numpy/pandas
(binned), so hundreds of thousands of rows draw as quickly as a hundred. matplotlib is imported
when a plot is made, never by ``import velonb``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["counts", "timeline"]

# Column names tried, in order, when ``time`` is not given and no column has a datetime dtype.
TIME_COLUMNS = ("Timestamp", "EventTime", "_ts", "Time", "time", "timestamp", "CreateTime",
                "StartTime", "LastWriteTime", "Mtime", "MTime", "Created")
# Bin widths offered by the automatic choice, smallest first.
_STEPS = ("1s", "5s", "10s", "30s", "1min", "5min", "10min", "15min", "30min", "1h", "2h", "3h",
          "6h", "12h", "1D", "2D", "7D", "14D", "30D", "90D", "365D")
MAX_BINS = 150
MAX_GROUPS = 12
OTHER = "(other)"
MISSING = "(missing)"


def _pyplot() -> Any:
    import matplotlib.pyplot as plt

    return plt


def _new_figure(width: float, height: float) -> Figure:
    """A figure that is shown once, as the return value (closed so inline backends skip it)."""
    plt = _pyplot()
    fig = plt.figure(figsize=(width, height), layout="constrained")
    plt.close(fig)
    return fig


# -- time handling ------------------------------------------------------------------------------


def _find_time_column(df: pd.DataFrame) -> str:
    import pandas as pd

    for name in df.columns:
        if pd.api.types.is_datetime64_any_dtype(df[name]):
            return str(name)
    for name in TIME_COLUMNS:
        if name in df.columns:
            return name
    raise ValueError("no time column found: pass time='<column>' "
                     f"(columns: {', '.join(map(str, df.columns[:20]))})")


def to_utc_times(values: pd.Series) -> pd.Series:
    """``values`` as tz-aware datetimes: datetimes (naive ones are taken as UTC), ISO strings,
    or epoch numbers (seconds, milliseconds, microseconds or nanoseconds, by magnitude)."""
    import numpy as np
    import pandas as pd

    if isinstance(values.dtype, pd.DatetimeTZDtype):
        return values
    if pd.api.types.is_datetime64_any_dtype(values):
        return values.dt.tz_localize("UTC")
    if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
        numbers = values.astype("float64")
        finite = numbers[np.isfinite(numbers)]
        top = float(np.abs(finite).max()) if len(finite) else 0.0
        unit: Any = "ns" if top > 1e17 else "us" if top > 1e14 else "ms" if top > 1e11 else "s"
        return pd.to_datetime(numbers, unit=unit, utc=True, errors="coerce")
    converted: pd.Series = pd.to_datetime(values, utc=True, errors="coerce", format="mixed")
    return converted


def _choose_step(span_ns: int, freq: str | None) -> tuple[str, int]:
    import pandas as pd

    if freq is not None:
        return freq, int(pd.Timedelta(freq).value)
    for step in _STEPS:
        width = int(pd.Timedelta(step).value)
        if span_ns / width <= MAX_BINS:
            return step, width
    return _STEPS[-1], int(pd.Timedelta(_STEPS[-1]).value)


def _group_codes(values: pd.Series, max_groups: int) -> tuple[Any, list[str]]:
    """Integer codes for ``values`` (the ``max_groups`` - 1 largest groups, the rest as
    "(other)") and their names, largest group first."""
    import numpy as np
    import pandas as pd

    codes, uniques = pd.factorize(_hashable(values), use_na_sentinel=False)
    sizes = np.bincount(codes, minlength=len(uniques))
    order = np.argsort(-sizes, kind="stable")
    names = [MISSING if _is_missing(uniques[i]) else str(uniques[i]) for i in order]
    remap = np.empty(len(uniques), dtype=np.int64)
    remap[order] = np.arange(len(uniques))
    codes = remap[codes]
    if len(names) > max_groups:
        keep = max_groups - 1
        codes = np.minimum(codes, keep)
        names = [*names[:keep], OTHER]
    return codes, names


def _is_missing(value: Any) -> bool:
    import pandas as pd

    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def _hashable(values: pd.Series) -> pd.Series:
    """``values`` unchanged, or as text when they hold lists/dicts (VQL often returns those)."""
    try:
        values.head(1000).map(hash)
    except TypeError:
        return values.map(lambda v: v if isinstance(v, str) or _is_missing(v) else str(v))
    return values


def timeline(
    df: pd.DataFrame,
    time: str | None = None,
    by: str | None = None,
    label: str | None = None,
    *,
    freq: str | None = None,
    max_groups: int = MAX_GROUPS,
    max_labels: int = 30,
    title: str | None = None,
) -> Figure:
    """Events over time: a histogram of all rows, plus one lane per ``by`` value (host, user,
    artifact...) with a dot per non-empty bin sized by its count. Returns the Figure.

    ``time`` is the time column (default: the first datetime column, else a usual name such as
    Timestamp or EventTime); naive times are taken as UTC, epoch numbers are converted. ``freq``
    is the bin width (``"5min"``, ``"1h"``...; default: chosen for about 150 bins). Empty bins
    stay empty, so gaps show. Only the ``max_groups`` - 1 largest groups get a lane; the rest
    share "(other)". ``label`` names a column whose most frequent value is written next to each
    dot when there are at most ``max_labels`` dots (a sparse timeline reads like a story).
    """
    import numpy as np
    import pandas as pd

    column = time or _find_time_column(df)
    if column not in df.columns:
        raise KeyError(f"no column {column!r} (columns: {', '.join(map(str, df.columns[:20]))})")
    for name in (by, label):
        if name is not None and name not in df.columns:
            raise KeyError(f"no column {name!r}")
    times = to_utc_times(df[column])
    keep = times.notna().to_numpy()
    naive = times.dt.tz_convert("UTC").dt.tz_localize(None)
    ns = naive.to_numpy(dtype="datetime64[ns]")[keep].astype(np.int64)
    tz = times.dt.tz
    fig = _new_figure(11, 3.2 if by is None else 3.2 + 0.32 * min(max_groups, _nunique(df, by)))
    if len(ns) == 0:
        ax = fig.add_subplot()
        ax.text(0.5, 0.5, f"no rows with a time in {column!r}", ha="center", va="center",
                transform=ax.transAxes)
        ax.set_axis_off()
        fig.suptitle(title or f"Timeline of {column}: no events")
        return fig

    start, end = int(ns.min()), int(ns.max())
    step, width = _choose_step(end - start, freq)
    origin = (start // width) * width
    bins = (ns - origin) // width
    nbins = int(bins.max()) + 1
    edges = origin + np.arange(nbins + 1, dtype=np.int64) * width
    x = _date_numbers(edges)
    totals = np.bincount(bins, minlength=nbins)

    if by is None:
        ax = fig.add_subplot()
        _histogram(ax, x, totals)
        lanes_ax = ax
    else:
        grid = fig.add_gridspec(2, 1, height_ratios=(1, 2.2 + 0.12 * max_groups))
        ax = fig.add_subplot(grid[0])
        lanes_ax = fig.add_subplot(grid[1], sharex=ax)
        _histogram(ax, x, totals)
        ax.tick_params(labelbottom=False)
        codes, names = _group_codes(df[by][keep], max_groups)
        cells = np.bincount(codes * nbins + bins, minlength=len(names) * nbins)
        matrix = cells.reshape(len(names), nbins)
        lane, col = np.nonzero(matrix)
        sizes = matrix[lane, col]
        centres = (x[col] + x[col + 1]) / 2
        area = 12 + 220 * np.sqrt(sizes / sizes.max())
        dots = lanes_ax.scatter(centres, lane, s=area, c=np.log1p(sizes), cmap="viridis",
                                alpha=0.85, edgecolors="none")
        lanes_ax.set_yticks(range(len(names)), names)
        lanes_ax.set_ylim(len(names) - 0.5, -0.5)
        lanes_ax.set_ylabel(by)
        lanes_ax.grid(axis="x", alpha=0.3)
        colorbar = fig.colorbar(dots, ax=lanes_ax, pad=0.01, aspect=30)
        ticks = np.unique(np.geomspace(1, max(int(sizes.max()), 1), num=5).round().astype(int))
        colorbar.set_ticks(np.log1p(ticks), labels=[f"{t:,}" for t in ticks])
        colorbar.set_label(f"events per {step}")
        if label is not None and len(lane) <= max_labels:
            _annotate(lanes_ax, df[label][keep], codes * nbins + bins, lane, col, centres,
                      nbins)

    _time_axis(lanes_ax, tz, column)
    first = pd.Timestamp(start, tz="UTC").tz_convert(tz)
    last = pd.Timestamp(end, tz="UTC").tz_convert(tz)
    what = f"{len(ns):,} events" + (f" by {by}" if by else "")
    fig.suptitle(title or f"{what}, {first:%Y-%m-%d %H:%M} to {last:%Y-%m-%d %H:%M} {tz} "
                          f"({step} bins)")
    return fig


def _nunique(df: pd.DataFrame, column: str) -> int:
    return int(_hashable(df[column]).nunique(dropna=False))


def _date_numbers(edges_ns: Any) -> Any:
    """matplotlib date numbers (days since matplotlib's epoch) for UTC nanosecond timestamps."""
    import matplotlib.dates as mdates
    import numpy as np

    epoch = float(mdates.date2num(np.datetime64("1970-01-01T00:00:00")))
    return edges_ns / 86_400e9 + epoch


def _histogram(ax: Axes, x: Any, totals: Any) -> None:
    import numpy as np

    heights = np.append(totals, totals[-1] if len(totals) else 0)
    ax.fill_between(x, heights, step="post", alpha=0.75, color="tab:blue", linewidth=0)
    ax.set_ylabel("events")
    ax.set_ylim(bottom=0)
    ax.grid(axis="y", alpha=0.3)


def _time_axis(ax: Axes, tz: Any, column: str) -> None:
    import matplotlib.dates as mdates

    locator = mdates.AutoDateLocator(tz=tz, maxticks=12)
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator, tz=tz))
    ax.set_xlabel(f"{column} ({tz})")


def _annotate(ax: Axes, labels: pd.Series, cell: Any, lane: Any, col: Any, centres: Any,
              nbins: int) -> None:
    import pandas as pd

    frame = pd.DataFrame({"cell": cell, "label": _hashable(labels).to_numpy()})
    top = frame.groupby("cell")["label"].agg(lambda s: s.value_counts().index[0]
                                             if s.notna().any() else "")
    distinct = frame.groupby("cell")["label"].nunique()
    for y, c, xc in zip(lane, col, centres, strict=True):
        key = int(y) * nbins + int(c)
        text = _shorten(str(top.get(key, "")), 28)
        more = int(distinct.get(key, 1)) - 1
        if more > 0:
            text += f" +{more}"
        ax.annotate(text, (xc, y), xytext=(6, 4), textcoords="offset points", fontsize=7)


def _shorten(text: str, limit: int) -> str:
    """``text`` cut in the middle to ``limit`` characters (paths keep both ends)."""
    if len(text) <= limit:
        return text
    half = (limit - 1) // 2
    return text[:half] + "…" + text[-(limit - 1 - half):]


# -- stacking -----------------------------------------------------------------------------------


def counts(
    df: pd.DataFrame,
    column: str,
    by: str | None = None,
    top: int = 20,
    least: bool = False,
    *,
    max_groups: int = 10,
    title: str | None = None,
) -> Figure:
    """Stacking: the ``top`` most frequent values of ``column`` (``least=True``: the least
    frequent, where outliers hide) as horizontal bars. Returns the Figure.

    Without ``by`` values are ranked by row count. With ``by`` (usually the host) they are
    ranked by how many distinct ``by`` values they appear on, then by rows, and each bar is
    split by ``by`` (the ``max_groups`` - 1 largest, the rest as "(other)"): a binary seen on
    one host of the fleet comes first with ``least=True``. Missing values count as "(missing)".
    """
    import numpy as np
    import pandas as pd

    for name in (column, by):
        if name is not None and name not in df.columns:
            raise KeyError(f"no column {name!r} (columns: {', '.join(map(str, df.columns[:20]))})")
    values = _hashable(df[column]).astype(object).where(df[column].notna(), MISSING)
    frame = pd.DataFrame({"value": values.astype(str)})
    if by is not None:
        frame["group"] = _hashable(df[by]).astype(object).where(df[by].notna(), MISSING) \
            .astype(str)
    rows = frame.groupby("value", sort=False).size()
    if by is not None:
        spread = frame.groupby("value", sort=False)["group"].nunique()
        rank = pd.DataFrame({"spread": spread, "rows": rows})
        keys = ["spread", "rows"]
    else:
        rank = pd.DataFrame({"rows": rows})
        keys = ["rows"]
    rank = rank.sort_values(keys, ascending=least, kind="stable")
    chosen = rank.head(top)
    fig = _new_figure(10, 1.4 + 0.28 * max(len(chosen), 3 if by is None else 8))
    ax = fig.add_subplot()
    kind = "Least" if least else "Most"
    what = f"{kind} frequent {column}" + (f" across {by}" if by else "")
    fig.suptitle(title or f"{what} ({len(chosen)} of {len(rank):,} values, {len(df):,} rows)")
    if chosen.empty:
        ax.text(0.5, 0.5, "no rows", ha="center", va="center", transform=ax.transAxes)
        ax.set_axis_off()
        return fig
    names = list(chosen.index)
    ypos = np.arange(len(names))
    if by is None:
        ax.barh(ypos, chosen["rows"].to_numpy(), color="tab:blue")
        for y, n in zip(ypos, chosen["rows"], strict=True):
            ax.annotate(f"{n:,}", (n, y), xytext=(3, 0), textcoords="offset points",
                        va="center", fontsize=8)
    else:
        subset = frame[frame["value"].isin(set(names))]
        table = subset.groupby(["value", "group"]).size().unstack(fill_value=0)
        table = table.reindex(names).fillna(0)
        table = _fold_columns(table, max_groups)
        left = np.zeros(len(names))
        colours = _pyplot().get_cmap("tab20").colors
        for i, group in enumerate(table.columns):
            widths = table[group].to_numpy(dtype=float)
            ax.barh(ypos, widths, left=left, label=str(group), color=colours[i % 20])
            left += widths
        spreads = chosen["spread"].tolist()
        for row, (n_groups, total) in enumerate(zip(spreads, chosen["rows"].tolist(),
                                                    strict=True)):
            ax.annotate(f"{total:,} rows, {n_groups} distinct {by}", (left[row], row),
                        xytext=(3, 0), textcoords="offset points", va="center", fontsize=8)
        ax.legend(title=by, fontsize=7, title_fontsize=8, loc="upper left",
                  bbox_to_anchor=(1.01, 1.0))
    ax.set_yticks(ypos, [_shorten(n, 60) for n in names], fontsize=8)
    ax.set_ylim(len(names) - 0.5, -0.5)
    ax.set_xlabel("rows")
    ax.set_ylabel(column)
    ax.margins(x=0.15)
    ax.grid(axis="x", alpha=0.3)
    return fig


def _fold_columns(table: pd.DataFrame, max_groups: int) -> pd.DataFrame:
    """Keep the ``max_groups`` - 1 largest columns, summing the rest into "(other)"."""
    order: Sequence[Any] = list(table.sum().sort_values(ascending=False).index)
    if len(order) <= max_groups:
        return table[list(order)]
    keep = list(order[: max_groups - 1])
    folded = table[keep].copy()
    folded[OTHER] = table.drop(columns=keep).sum(axis=1)
    return folded
