"""The cross-column rules a declarative file may use, as :class:`huizhi.specs.RowCheck`.

Four kinds cover what the action plan's ledgers ask of a row (docs/declarative-plugins.md):

``required_if``   ``column`` must be filled when every condition of ``when`` holds
                  (开通日期 is required once 建设状态 is 已开通);
``empty_unless``  ``column`` must stay empty unless ``when`` holds (no 开通日期 before it opens);
``order``         the ``columns`` (dates or numbers) never decrease from left to right, where
                  filled (立项日期 <= 开工日期 <= 开通日期);
``all_or_none``   the ``columns`` are filled together or left empty together (经度 and 纬度).

Each check gets the typed DataFrame and returns True for a row that passes; a cell that is
empty or failed its own column check counts as passing here (the column check reports it).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from huizhi.specs import ColumnSpec, RowCheck

Where = tuple[tuple[str, tuple[Any, ...]], ...]


def _holds(df: Any, when: Where) -> Any:
    import pandas as pd

    ok = pd.Series(True, index=df.index)
    for column, values in when:
        ok &= df[column].isin(list(values)).fillna(False).astype(bool)
    return ok


def _describe(when: Where, columns: Mapping[str, ColumnSpec]) -> str:
    return "且".join(f"“{columns[c].label}”为“{'、'.join(str(v) for v in vs)}”" for c, vs in when)


def required_if(
    column: ColumnSpec, when: Where, columns: Mapping[str, ColumnSpec], *, message: str | None, soft: bool
) -> RowCheck:
    def check(df: Any) -> Any:
        return ~_holds(df, when) | df[column.name].notna()

    text = message or f"{_describe(when, columns)}时，须填写“{column.label}”。"
    return RowCheck(f"required_if_{column.name}", (column.name, *(c for c, _ in when)), text, check, soft)


def empty_unless(
    column: ColumnSpec, when: Where, columns: Mapping[str, ColumnSpec], *, message: str | None, soft: bool
) -> RowCheck:
    def check(df: Any) -> Any:
        return _holds(df, when) | df[column.name].isna()

    text = message or f"只有{_describe(when, columns)}时才填写“{column.label}”，否则请留空。"
    return RowCheck(f"empty_unless_{column.name}", (column.name, *(c for c, _ in when)), text, check, soft)


def order(cols: tuple[ColumnSpec, ...], *, message: str | None, soft: bool) -> RowCheck:
    names = tuple(c.name for c in cols)
    dates = cols[0].dtype == "date"

    def values(df: Any, name: str) -> Any:
        import pandas as pd

        return pd.to_datetime(df[name], errors="coerce") if dates else pd.to_numeric(df[name], errors="coerce")

    def check(df: Any) -> Any:
        import pandas as pd

        ok = pd.Series(True, index=df.index)
        for i, earlier in enumerate(names):
            for later in names[i + 1 :]:
                a, b = values(df, earlier), values(df, later)
                ok &= (a.isna() | b.isna() | (a <= b)).astype(bool)
        return ok

    text = message or f"应满足 {' ≤ '.join('“' + c.label + '”' for c in cols)}（{'日期从早到晚' if dates else '数值从小到大'}），请核对。"
    return RowCheck(f"order_{'_'.join(names)}", names, text, check, soft)


def all_or_none(cols: tuple[ColumnSpec, ...], *, message: str | None, soft: bool) -> RowCheck:
    names = tuple(c.name for c in cols)

    def check(df: Any) -> Any:
        filled = df[list(names)].notna()
        return (filled.all(axis=1) | ~filled.any(axis=1)).astype(bool)

    text = message or f"{'、'.join('“' + c.label + '”' for c in cols)}须同时填写或同时留空。"
    return RowCheck(f"all_or_none_{'_'.join(names)}", names, text, check, soft)
