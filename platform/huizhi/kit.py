"""The page kit: the building blocks every department page needs, written once.

Part of the plugin contract, and the only plugin-facing module that draws with Streamlit (it
imports Streamlit inside the functions that draw, so the declarations and the arithmetic here can
be used and tested without it). A department page is then short::

    from huizhi import kit

    FILTERS = (
        (kit.Pick("streets", "所属镇街", district.street_names(), ("street",)),
         kit.Departments("departments", "权属单位", "owner_dept", ("department", "dept"))),
        (kit.Search("search", "搜索", placeholder="编号或名称"),),
    )

    def render(ctx):
        st.title("…")
        reader = kit.open_ledger(ctx, "my_ledger")
        if reader is None:
            return
        chosen = kit.filters(ctx, reader, FILTERS)
        …
        kit.paged_table(total, fetch, key=kit.widget_key(ctx), labels=kit.column_labels(reader.spec))

Filters read their defaults from ``ctx.params`` (a cockpit drill-down or a shared link), and a
parameter naming a department whose rows the person may not read is refused and audited rather
than silently dropped. Numbers are written the cockpit's way (:mod:`huizhi.fmt`).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
import re
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from huizhi import params as P
from huizhi.context import AccessDenied
from huizhi.fmt import axis_ticks, format_as_of, format_number, format_percent, scale_for

if TYPE_CHECKING:
    import pandas as pd

    from huizhi.context import LedgerReader, PageContext, SourceResult
    from huizhi.specs import LedgerSpec

__all__ = [
    "CHART_CONFIG",
    "PAGE_SIZES",
    "DateRange",
    "Departments",
    "Flag",
    "Metric",
    "Paging",
    "Pick",
    "Search",
    "YesNo",
    "bar_chart",
    "bar_figure",
    "column_labels",
    "column_order",
    "data_caption",
    "day_input",
    "display_frame",
    "filter_defaults",
    "filter_params",
    "filters",
    "filters_active",
    "links",
    "metrics",
    "open_ledger",
    "own_units",
    "paged_table",
    "paging",
    "parse_day",
    "quick_ranges",
    "ratio_range",
    "refused_departments",
    "source_data",
    "source_notice",
    "table",
    "widget_key",
]

PAGE_SIZES = (25, 50, 100, 200)
# Plotly's mode bar without its logo and the selection tools a read-only chart does not use.
CHART_CONFIG = {"displaylogo": False, "modeBarButtonsToRemove": ["lasso2d", "select2d"]}


# -- opening a ledger -----------------------------------------------------------------------------


def open_ledger(ctx: PageContext, ledger_id: str, empty_message: str | None = None) -> LedgerReader | None:
    """Open ``ledger_id`` through ``ctx.ledger`` (rows already limited to what the person may
    see) and return the reader. Returns None after drawing a Chinese message instead: a warning
    with the refusal's ``user_message`` when the person may read no rows (the refusal is audited
    by ``ctx.ledger``), or ``empty_message`` (default: the ledger has no data yet, ask its ledger
    admin to upload the first version) when no version has been committed."""
    import streamlit as st

    try:
        reader = ctx.ledger(ledger_id)
    except AccessDenied as exc:
        st.warning(exc.user_message)
        return None
    if reader.version is None:
        st.info(
            empty_message
            or f"{reader.spec.title}尚无数据。请台账管理员在“台账上传”页面按模板上传第一版，"
            "或由平台管理员运行 `huizhi seed` 载入演示数据。"
        )
        return None
    return reader


def source_notice_text(result: SourceResult, title: str) -> str | None:
    """The Chinese notice for a result whose source is down (None when it answered)."""
    if not result.down:
        return None
    assert result.error_since is not None
    since = format_as_of(result.error_since)
    if result.available and result.fetched_at is not None:
        return (
            f"数据源不可用：{title}自 {since}（北京时间）起无法访问。以下显示的是 "
            f"{format_as_of(result.fetched_at)}（北京时间）获取的最近一次数据，可能不是最新情况；"
            "数据源恢复后将自动更新。"
        )
    return (
        f"数据源不可用：{title}自 {since}（北京时间）起无法访问，暂无可显示的数据。"
        "请稍后刷新页面；如长时间无法访问，请联系平台管理员。"
    )


def source_notice(result: SourceResult, title: str) -> None:
    """Draw the notice for a source that is down: a warning naming ``title``, since when, and
    the time of the last good data shown below it; an error box when there is none. Draws
    nothing when the source answered."""
    import streamlit as st

    text = source_notice_text(result, title)
    if text is None:
        return
    (st.warning if result.available else st.error)(text, icon="⚠️")


def source_data(
    ctx: PageContext,
    connector_id: str,
    query: Any,
    params: Mapping[str, Any] | None = None,
    *,
    title: str,
    max_age: float | None = None,
) -> SourceResult:
    """Fetch through ``ctx.source`` (cached, with a timeout) and show :func:`source_notice`
    when the source is down. Use ``result.data`` when ``result.available``; the rest of the page
    goes on either way::

        result = kit.source_data(ctx, "jxj_db", sa.text("SELECT … WHERE street = :s"), {"s": street},
                                 title="经信局设备库")
        if result.available:
            kit.table(result.data, labels)

    A refusal (``AccessDenied``) is shown as a warning with its Chinese message and comes back
    as a result with no data and no error."""
    import streamlit as st

    from huizhi.context import SourceResult

    try:
        result = ctx.source(connector_id, query, params, max_age=max_age)
    except AccessDenied as exc:
        st.warning(exc.user_message)
        return SourceResult(connector_id)
    source_notice(result, title)
    return result


def data_caption(reader: LedgerReader, all_rows: str, some_rows: str, *, version: bool = True) -> str:
    """One line saying whose rows the person sees: ``all_rows`` when they see every row,
    otherwise ``some_rows`` with ``{names}`` replaced by their departments (joined with 、).
    With ``version``, adds when the current version was committed, in Beijing time."""
    if reader.sees_all_rows:
        text = all_rows
    else:
        text = some_rows.format(names="、".join(sorted(reader.scope.department_names)))
    if version and reader.updated_at is not None:
        text += f" 数据版本提交于 {format_as_of(reader.updated_at)}（北京时间）。"
    return text


def own_units(ctx: PageContext) -> tuple[str, ...]:
    """The names of the signed-in person's own units (departments), as ledgers store them
    (区经济和信息化局 …), sorted. Empty for someone without a unit: a district leader or a
    platform admin. What a "本单位…" page lists: the rows these units own or handle, also when
    the person may read more (the owning department reads every row of its ledger)."""
    identity = ctx.identity
    return tuple(sorted(identity.directory.name(d) for d in identity.departments))


def widget_key(ctx: PageContext, base: str | None = None) -> str:
    """A widget-key prefix for this page: ``base`` (default: the page's url path) plus a digest
    of the query parameters, so following a new drill-down link resets the widgets to the link's
    values instead of keeping the previous choices."""
    base = base or (ctx.page.url_path if ctx.page else "page")
    digest = hashlib.sha1(json.dumps(dict(ctx.params), sort_keys=True, default=str).encode()).hexdigest()[:8]
    return f"{base}-{digest}"


# -- filters ----------------------------------------------------------------------------------------
# Each filter field declares its widget, the query parameters it reads (the first is the one
# links write) and the value it contributes to the selection, so parsing a link, drawing the
# panel and writing a link for another page all follow one declaration.


@dataclass(frozen=True)
class Pick:
    """A multi-select of fixed ``options``; contributes ``{name: tuple of chosen options}``.
    Read from the query parameters ``params`` (comma lists; unknown values dropped)."""

    name: str
    label: str
    options: Sequence[str]
    params: tuple[str, ...]
    placeholder: str = "全部"
    width: int = 1

    def default(self, params: Mapping[str, Any]) -> dict[str, Any]:
        return {self.name: P.values(params, *self.params, allowed=self.options)}

    def empty(self) -> dict[str, Any]:
        return {self.name: ()}

    def to_params(self, values: Mapping[str, Any]) -> dict[str, str]:
        chosen = values.get(self.name) or ()
        return {self.params[0]: ",".join(chosen)} if chosen else {}

    def draw(self, col: Any, initial: Mapping[str, Any], key: str, ctx: PageContext, reader: LedgerReader) -> Any:
        chosen = col.multiselect(
            self.label,
            list(self.options),
            default=[v for v in initial[self.name] if v in self.options],
            key=f"{key}-filter-{self.name}",
            placeholder=self.placeholder,
        )
        return {self.name: tuple(chosen)}


@dataclass(frozen=True)
class Departments:
    """Departments (by Chinese name) in the ledger's ``column``; contributes ``{name: tuple of
    department names}``. Query parameters may give names (区公安分局) or ids (gaj).

    Someone who reads every row picks among the departments present in the ledger. Someone who
    reads only their own department's rows sees it as fixed text, and the field contributes ()
    (the host already limits their rows); a parameter naming any other department is refused
    (see :func:`filters`)."""

    name: str
    label: str
    column: str
    params: tuple[str, ...]
    placeholder: str = "全部单位"
    width: int = 1

    def default(self, params: Mapping[str, Any]) -> dict[str, Any]:
        return {self.name: P.departments(params, *self.params)}

    def empty(self) -> dict[str, Any]:
        return {self.name: ()}

    def to_params(self, values: Mapping[str, Any]) -> dict[str, str]:
        chosen = values.get(self.name) or ()
        return {self.params[0]: ",".join(chosen)} if chosen else {}

    def draw(self, col: Any, initial: Mapping[str, Any], key: str, ctx: PageContext, reader: LedgerReader) -> Any:
        if not reader.sees_all_rows:
            col.text_input(
                self.label,
                value="、".join(sorted(reader.scope.department_names)),
                disabled=True,
                key=f"{key}-filter-{self.name}-fixed",
            )
            return {self.name: ()}
        options = [str(v) for v in reader.distinct(self.column)]
        chosen = col.multiselect(
            self.label,
            options,
            default=[d for d in initial[self.name] if d in options],
            key=f"{key}-filter-{self.name}",
            placeholder=self.placeholder,
        )
        return {self.name: tuple(chosen)}


@dataclass(frozen=True)
class Flag:
    """A check box; contributes ``{name: bool}``. On when the parameter is 1/true/yes/是."""

    name: str
    label: str
    params: tuple[str, ...]
    width: int = 1

    def default(self, params: Mapping[str, Any]) -> dict[str, Any]:
        return {self.name: P.flag(params, *self.params) is True}

    def empty(self) -> dict[str, Any]:
        return {self.name: False}

    def to_params(self, values: Mapping[str, Any]) -> dict[str, str]:
        return {self.params[0]: "1"} if values.get(self.name) else {}

    def draw(self, col: Any, initial: Mapping[str, Any], key: str, ctx: PageContext, reader: LedgerReader) -> Any:
        return {
            self.name: bool(
                col.checkbox(self.label, value=initial[self.name], key=f"{key}-filter-{self.name}")
            )
        }


@dataclass(frozen=True)
class YesNo:
    """A choice of 全部 / ``yes`` / ``no``; contributes ``{name: None, True or False}``. Read from
    是/否 (or 1/0, true/false) in the parameter."""

    name: str
    label: str
    params: tuple[str, ...]
    yes: str = "是"
    no: str = "否"
    width: int = 1

    def default(self, params: Mapping[str, Any]) -> dict[str, Any]:
        return {self.name: P.flag(params, *self.params)}

    def empty(self) -> dict[str, Any]:
        return {self.name: None}

    def to_params(self, values: Mapping[str, Any]) -> dict[str, str]:
        value = values.get(self.name)
        return {} if value is None else {self.params[0]: "是" if value else "否"}

    def draw(self, col: Any, initial: Mapping[str, Any], key: str, ctx: PageContext, reader: LedgerReader) -> Any:
        options = ("全部", self.yes, self.no)
        index = {None: 0, True: 1, False: 2}[initial[self.name]]
        picked = col.selectbox(self.label, options, index=index, key=f"{key}-filter-{self.name}")
        return {self.name: None if picked == "全部" else picked == self.yes}


@dataclass(frozen=True)
class Search:
    """A free-text box; contributes ``{name: text}`` (trimmed, at most 100 characters)."""

    name: str
    label: str = "搜索"
    params: tuple[str, ...] = ("q", "search")
    placeholder: str = ""
    width: int = 1

    def default(self, params: Mapping[str, Any]) -> dict[str, Any]:
        return {self.name: P.text(params, *self.params)}

    def empty(self) -> dict[str, Any]:
        return {self.name: ""}

    def to_params(self, values: Mapping[str, Any]) -> dict[str, str]:
        return {self.params[0]: values[self.name]} if values.get(self.name) else {}

    def draw(self, col: Any, initial: Mapping[str, Any], key: str, ctx: PageContext, reader: LedgerReader) -> Any:
        text = col.text_input(
            self.label,
            value=initial[self.name],
            key=f"{key}-filter-{self.name}",
            placeholder=self.placeholder,
        )
        return {self.name: text.strip()[:100]}


def _iso_date(text: str) -> dt.date | None:
    try:
        return dt.date.fromisoformat(text.strip()) if text.strip() else None
    except ValueError:
        return None


_DAY = re.compile(r"([0-9]{4})\s*[-/.年]\s*([0-9]{1,2})\s*[-/.月]\s*([0-9]{1,2})\s*日?")


def parse_day(text: str) -> dt.date | None:
    """A day as people type it: ``2026-01-31``, ``2026/1/31``, ``2026.1.31``, ``2026年1月31日``
    or ``20260131`` (full-width digits too); None when it is no real day (``2026-02-30``)."""
    text = unicodedata.normalize("NFKC", text).strip()
    match = _DAY.fullmatch(text) or re.fullmatch(r"([0-9]{4})([0-9]{2})([0-9]{2})", text)
    if not match:
        return None
    try:
        return dt.date(*(int(g) for g in match.groups()))
    except ValueError:
        return None


def day_input(
    label: str,
    value: dt.date,
    *,
    key: str,
    earliest: dt.date | None = None,
    latest: dt.date | None = None,
    container: Any = None,
) -> dt.date:
    """A day typed as 年-月-日 into a text box (drawn in ``container``, default the page), for
    Streamlit's ``st.date_input`` cannot be made Chinese: its calendar names months and weekdays
    in the browser's language and its range footer ("Date range", "Select...") is always English
    (Streamlit 1.67 has no locale option, streamlit#12699). Returns the day typed; a text that is
    no day, or a day outside ``earliest``..``latest``, shows a Chinese error under the box and
    returns ``value`` (or the nearest allowed day), so the page keeps working."""
    import streamlit as st

    where = container if container is not None else st
    text = where.text_input(label, value=value.isoformat(), key=key, placeholder=f"例如 {value.isoformat()}")
    day = parse_day(text)
    if day is None:
        where.error(f"“{label}”无法识别：“{text.strip()[:20]}”。请写成 年-月-日，例如 {value.isoformat()}；暂按 {value.isoformat()} 查询。")
        return value
    if earliest is not None and day < earliest:
        where.error(f"“{label}”不能早于 {earliest.isoformat()}，暂按 {earliest.isoformat()} 查询。")
        return earliest
    if latest is not None and day > latest:
        where.error(f"“{label}”不能晚于 {latest.isoformat()}（今天），暂按 {latest.isoformat()} 查询。")
        return latest
    return day


CUSTOM_RANGE = "自定义"


def quick_ranges(today: dt.date, months: int) -> dict[str, tuple[dt.date, dt.date]]:
    """The ready-made ranges of a :class:`DateRange`, label → (first day, last day), ending
    today except 上月; ``近{months}个月`` is the window the panel starts on without a parameter."""
    month_start = today.replace(day=1)
    last_month_end = month_start - dt.timedelta(days=1)
    index = today.year * 12 + today.month - 1 - months
    return {
        "近7天": (today - dt.timedelta(days=6), today),
        "近30天": (today - dt.timedelta(days=29), today),
        "本月": (month_start, today),
        "上月": (last_month_end.replace(day=1), last_month_end),
        "本年": (today.replace(month=1, day=1), today),
        f"近{months}个月": (dt.date(index // 12, index % 12 + 1, 1), today),
    }


@dataclass(frozen=True)
class DateRange:
    """A date range; contributes ``{start: date or None, end: date or None}``. Read from one
    parameter written ``2026-01-01..2026-06-30`` (either side may be empty; bad dates ignored).

    Drawn as a choice of ready-made ranges (近7天, 近30天, 本月, 上月, 本年, 近 ``months`` 个月)
    and 自定义, which adds two boxes for the first and last day (:func:`day_input`, to the day).
    It offers days from ``earliest`` to today and starts, without a parameter, on the first day
    of the month ``months`` months back; a link's dates start it on the ready-made range they
    equal, else on 自定义 with those days. ``name`` is the widget's name."""

    name: str
    label: str
    param: str = "period"
    start: str = "start"
    end: str = "end"
    earliest: dt.date = dt.date(2015, 1, 1)
    months: int = 12
    width: int = 1

    def default(self, params: Mapping[str, Any]) -> dict[str, Any]:
        text = P.text(params, self.param)
        first, last = text.split("..", 1) if ".." in text else ("", "")
        return {self.start: _iso_date(first), self.end: _iso_date(last)}

    def empty(self) -> dict[str, Any]:
        return {self.start: None, self.end: None}

    def to_params(self, values: Mapping[str, Any]) -> dict[str, str]:
        first, last = values.get(self.start), values.get(self.end)
        if not (first or last):
            return {}
        return {self.param: f"{first.isoformat() if first else ''}..{last.isoformat() if last else ''}"}

    def bounds(self, initial: Mapping[str, Any], today: dt.date) -> tuple[dt.date, dt.date]:
        """The range the widget starts on: the parameter's dates kept inside what it allows
        (a hand-edited or cockpit URL may carry any dates)."""
        index = today.year * 12 + today.month - 1 - self.months
        fallback = dt.date(index // 12, index % 12 + 1, 1)
        end = min(max(initial[self.end] or today, self.earliest), today)
        start = min(max(initial[self.start] or fallback, self.earliest), end)
        return start, end

    def draw(self, col: Any, initial: Mapping[str, Any], key: str, ctx: PageContext, reader: LedgerReader) -> Any:
        start, end = self.bounds(initial, ctx.today)
        ranges = quick_ranges(ctx.today, self.months)
        labels = [*ranges, CUSTOM_RANGE]
        first = next((label for label, days in ranges.items() if days == (start, end)), CUSTOM_RANGE)
        choice = col.selectbox(
            self.label, labels, index=labels.index(first), key=f"{key}-filter-{self.name}",
            format_func=lambda label: f"{label}（{ranges[label][0]:%Y-%m-%d} 至 {ranges[label][1]:%Y-%m-%d}）"
            if label in ranges else label,
        )  # fmt: skip
        if choice != CUSTOM_RANGE:
            start, end = ranges[choice]
            return {self.start: start, self.end: end}
        left, right = col.columns(2)  # side by side: the panel's row stays one line of boxes tall
        common = {"earliest": self.earliest, "latest": ctx.today}
        start = day_input("起始日期（年-月-日）", start, key=f"{key}-filter-{self.name}-from", container=left, **common)
        end = day_input("截止日期（年-月-日）", end, key=f"{key}-filter-{self.name}-to", container=right, **common)
        if start > end:
            col.error(f"起始日期 {start.isoformat()} 晚于截止日期 {end.isoformat()}：已按 {end.isoformat()} 至 {start.isoformat()} 查询。")
            start, end = end, start
        return {self.start: start, self.end: end}


Field = Pick | Departments | Flag | YesNo | Search | DateRange
FilterRows = Sequence[Sequence[Field]]


def filter_defaults(rows: FilterRows, params: Mapping[str, Any]) -> dict[str, Any]:
    """The selection the query parameters ``params`` ask for, one entry per field value (what
    :func:`filters` starts its widgets on). ``rows`` are the panel's rows of fields."""
    values: dict[str, Any] = {}
    for row in rows:
        for field in row:
            values.update(field.default(params))
    return values


def filter_params(rows: FilterRows, values: Mapping[str, Any]) -> dict[str, str]:
    """Query parameters that :func:`filter_defaults` reads back as ``values`` (for links that
    carry the current filters to another page). Empty choices are left out."""
    out: dict[str, str] = {}
    for row in rows:
        for field in row:
            out.update(field.to_params(values))
    return out


def filters_active(rows: FilterRows, values: Mapping[str, Any], today: dt.date | None = None) -> bool:
    """True when ``values`` (what :func:`filters` returned) differ from the panel's starting
    state, so an empty result can say the true reason: nothing matches the person's filters, or
    there are no rows. With ``today``, a :class:`DateRange` still on the window it starts on
    without a parameter (the last ``months`` months) does not count as a filter the person set."""
    for row in rows:
        for field in row:
            if isinstance(field, DateRange) and today is not None:
                chosen = (values.get(field.start), values.get(field.end))
                if chosen == field.bounds(field.empty(), today) or chosen == (None, None):
                    continue
            if field.to_params(values):
                return True
    return False


def refused_departments(reader: LedgerReader, rows: FilterRows, params: Mapping[str, Any]) -> tuple[str, ...]:
    """Departments named in ``params`` (by a :class:`Departments` field) whose rows ``reader``
    may not read: empty when the reader sees every row."""
    if reader.sees_all_rows:
        return ()
    own = reader.scope.department_names
    asked = [
        n
        for f in (f for row in rows for f in row if isinstance(f, Departments))
        for n in f.default(params)[f.name]
    ]
    return tuple(dict.fromkeys(n for n in asked if n not in own))


def filters(
    ctx: PageContext,
    reader: LedgerReader,
    rows: FilterRows,
    *,
    key: str | None = None,
    omit: Sequence[str] = (),
) -> dict[str, Any]:
    """Draw the filter panel (a bordered box, one line of widgets per row of fields, widths from
    each field's ``width``) starting from what ``ctx.params`` asks for, and return the selection
    as a dict (field value name → value; feed it to the page's filter dataclass).

    Fields named in ``omit`` are not drawn and contribute their empty value: what a page does
    not show, it does not filter by. Before drawing, a query parameter naming a department whose
    rows the person may not read is refused: ``raise ctx.deny("department:<name>", "query
    parameter")`` (audited; the page shows the Chinese message instead of a page that quietly
    ignores part of the link)."""
    import streamlit as st

    refused = refused_departments(reader, rows, ctx.params)
    if refused:
        own = "、".join(sorted(reader.scope.department_names))
        raise ctx.deny(
            f"department:{refused[0]}",
            "query parameter",
            f"您无权查看“{'、'.join(refused)}”的数据：按权限，您只能查看 {own} 的数据。"
            "请去掉链接中的该单位条件后重新打开本页面。",
        )
    key = key or widget_key(ctx)
    initial = filter_defaults(rows, ctx.params)
    values: dict[str, Any] = {}
    with st.container(border=True):
        for row in rows:
            shown = [f for f in row if f.name not in omit]
            for field in row:
                if field.name in omit:
                    values.update(field.empty())
            if shown:
                # bottom-aligned, so a check box sits level with the inputs beside it
                cols = st.columns([f.width for f in shown], vertical_alignment="bottom")
                for col, field in zip(cols, shown, strict=True):
                    values.update(field.draw(col, initial, key, ctx, reader))
    return values


def links(ctx: PageContext, targets: Sequence[tuple[str, str, str]], params: Mapping[str, str]) -> None:
    """A line of links to other pages (``(url_path, label, icon)``), each carrying ``params``
    (e.g. the current filters from :func:`filter_params`). A page the person may not open gets
    no link (see ``ctx.link``)."""
    import streamlit as st

    for col, (url_path, label, icon) in zip(st.columns(len(targets) + 1), targets, strict=False):
        with col:
            ctx.link(url_path, label, icon, **params)


# -- metrics ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Metric:
    """One number of a metric row. ``kind``: "count" (12,345 / 15.27万), "ratio" (0..1 shown as
    91.2%) or "text" (shown as given). ``note`` is a grey line under the number."""

    label: str
    value: Any
    kind: Literal["count", "ratio", "text"] = "count"
    help: str | None = None
    note: str | None = None

    @property
    def text(self) -> str:
        """The value as shown: Chinese number style, "—" when there is none."""
        if self.kind == "ratio":
            return format_percent(self.value, fraction=True)
        if self.kind == "count":
            return format_number(self.value)
        return "—" if self.value is None else str(self.value)


def metrics(items: Sequence[Metric]) -> None:
    """Draw ``items`` side by side (one column each) with their formatted values."""
    import streamlit as st

    for col, item in zip(st.columns(len(items)), items, strict=True):
        col.metric(
            item.label,
            item.text,
            delta=item.note,
            delta_color="off",
            delta_arrow="off",
            help=item.help,
        )


# -- tables ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Paging:
    """Where a paged table is: ``page`` (1-based) of ``pages``, ``size`` rows each, ``total``
    rows in all; ``offset`` is the first row's index (for LIMIT/OFFSET)."""

    total: int
    size: int
    page: int

    @property
    def pages(self) -> int:
        return max(1, math.ceil(self.total / self.size))

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.size


def paging(total: int, size: int, page: int) -> Paging:
    """The :class:`Paging` for ``total`` rows, ``size`` per page (at least 1), page number
    ``page`` moved into 1..pages (a page past the end shows the last page)."""
    size = max(1, int(size))
    total = max(0, int(total))
    pages = max(1, math.ceil(total / size))
    return Paging(total=total, size=size, page=min(max(1, int(page)), pages))


def column_labels(spec: LedgerSpec, **extra: str) -> dict[str, str]:
    """Column name → Chinese header, from the ledger's declaration, plus ``extra`` for columns a
    query adds (e.g. ``next_due="下次巡检截止"``)."""
    return {**{c.name: c.label for c in spec.columns}, **extra}


def _cell(value: Any) -> Any:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, bool):
        return "是" if value else "否"
    if isinstance(value, dt.datetime):  # ledgers hold dates; a timestamp is the host's (naive UTC)
        return format_as_of(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


def display_frame(frame: pd.DataFrame, labels: Mapping[str, str]) -> pd.DataFrame:
    """``frame`` as people read it: columns in ``labels`` renamed to their Chinese headers (others
    kept), yes/no as 是/否, dates as YYYY-MM-DD, timestamps in Beijing time (:func:`huizhi.fmt.format_as_of`),
    empty cells blank. Numeric columns stay numbers."""
    import pandas as pd

    out = frame.copy()
    for col in out.columns:
        if not pd.api.types.is_numeric_dtype(out[col]) or pd.api.types.is_bool_dtype(out[col]):
            out[col] = out[col].map(_cell).astype(object)
    return out.rename(columns=dict(labels))


def _text_width(text: str) -> int:
    # East Asian wide characters take about two Latin ones in the table's font.
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


MAX_COLUMN = 420  # px: a longer text column is capped (the full text shows on hover)


def _column_config(frame: pd.DataFrame, *, pin: Sequence[str] = ()) -> dict[str, Any]:
    """Column widths from the header and the longest cell, so short columns are not padded and
    headers such as 下次巡检截止 are not cut off; numbers with thousands separators. Columns in
    ``pin`` stay in view while the table scrolls sideways."""
    import pandas as pd
    import streamlit as st

    config: dict[str, Any] = {}
    for col in frame.columns:
        cells = frame[col].head(200)
        numeric = pd.api.types.is_numeric_dtype(cells) and not pd.api.types.is_bool_dtype(cells)
        shown = [format_number(v) if numeric else str(v) for v in cells]
        chars = max([_text_width(str(col)), *(_text_width(s) for s in shown)])
        width = min(MAX_COLUMN, max(64, 8 * chars + 32))  # 8 px per Latin character, room for the sort icon
        pinned = True if col in pin else None
        if numeric:
            config[col] = st.column_config.NumberColumn(str(col), width=width, format="localized", pinned=pinned)
        else:
            config[col] = st.column_config.TextColumn(str(col), width=width, pinned=pinned)
    return config


def column_order(frame: pd.DataFrame, first: Sequence[str] = (), hide: Sequence[str] = ()) -> list[str]:
    """The columns of ``frame`` with ``first`` (those present, in that order) leading, then the
    others as they come, without ``hide``: key columns first, so the ones people look for are in
    view at 1440 px without scrolling sideways."""
    lead = [c for c in first if c in frame.columns and c not in hide]
    return lead + [c for c in frame.columns if c not in lead and c not in hide]


def table(
    frame: pd.DataFrame,
    labels: Mapping[str, str] | None = None,
    *,
    key: str | None = None,
    first: Sequence[str] = (),
    hide: Sequence[str] = (),
) -> None:
    """Draw ``frame`` as a read-only table: :func:`display_frame` with ``labels``, no index, each
    column wide enough for its header and contents (capped at 420 px; the full text shows on
    hover), numbers with thousands separators. ``first`` (column names before ``labels``) lead,
    and the first of them stays pinned while scrolling sideways; ``hide`` are left out."""
    import streamlit as st

    labels = labels or {}
    ordered = frame[column_order(frame, first, hide)]
    shown = display_frame(ordered, labels)
    pin = [labels.get(first[0], first[0])] if first and first[0] in ordered.columns else []
    st.dataframe(
        shown,
        hide_index=True,
        column_config=_column_config(shown, pin=pin),
        key=key,
    )


def paged_table(
    total: int,
    fetch: Callable[[int, int, str | None], pd.DataFrame],
    *,
    key: str,
    labels: Mapping[str, str],
    noun: str = "条记录",
    orders: Mapping[str, str] | None = None,
    empty: str = "没有符合条件的记录。请放宽筛选条件。",
    sizes: Sequence[int] = PAGE_SIZES,
    first: Sequence[str] = (),
    hide: Sequence[str] = (),
) -> Paging | None:
    """A table paged on the server: controls for rows per page, page number and (with
    ``orders``, order id → Chinese name) the order; then ``fetch(limit, offset, order)`` is called
    for just that page and its rows are drawn with :func:`table`, followed by a line "第 p / n 页 …
    共 total {noun}". With no rows it draws ``empty`` instead and returns None; otherwise returns
    the :class:`Paging` shown. ``first`` and ``hide`` order the columns as in :func:`table`."""
    import streamlit as st

    if total == 0:
        st.info(empty)
        return None
    cols = st.columns([1, 1, 2])
    size = cols[0].selectbox("每页行数", list(sizes), index=min(1, len(sizes) - 1), key=f"{key}-size")
    pages = paging(total, size, 1).pages
    page = cols[1].number_input(
        f"页码（共 {format_number(pages)} 页）",
        min_value=1,
        max_value=pages,
        value=1,
        step=1,
        key=f"{key}-page-{size}",  # a new page size starts again at page 1
    )
    order = (
        cols[2].selectbox("排序", list(orders.keys()), format_func=lambda o: orders[o], key=f"{key}-order")
        if orders
        else None
    )
    at = paging(total, size, page)
    table(fetch(at.size, at.offset, order), labels, key=f"{key}-table", first=first, hide=hide)
    st.caption(
        f"第 {at.page:,} / {at.pages:,} 页，每页 {at.size:,} 行，共 {format_number(total)} {noun}"
        "（数据在服务器端分页，不会一次载入全部）。"
    )
    return at


# -- charts ----------------------------------------------------------------------------------------


def bar_figure(
    labels: Sequence[Any],
    values: Sequence[float | None],
    *,
    title: str = "",
    color: str = "#1F6FB2",
    percent: bool = False,
    limit: int | None = None,
) -> Any:
    """A plotly figure of horizontal bars, first item on top: one bar per label, each labelled
    with its value (Chinese number style; ``percent``: values are ratios 0..1 shown as 91.2%).
    Counts of 10,000 and more are drawn in 万 (or 亿) on the axis, as the labels write them
    (:func:`huizhi.fmt.scale_for`); ticks have thousands separators. Missing values count as 0.
    ``limit`` keeps the first items only. Height grows with the number of bars, so labels stay
    readable."""
    import plotly.graph_objects as go

    pairs = [(str(k), 0.0 if v is None or v != v else float(v)) for k, v in zip(labels, values, strict=True)]
    pairs = pairs[:limit] if limit else pairs
    names = [k for k, _ in pairs]
    nums = [v for _, v in pairs]
    divisor, suffix = (1.0, "") if percent else scale_for(nums)
    text = [format_percent(v, fraction=True) if percent else format_number(v) for v in nums]
    fig = go.Figure(
        go.Bar(
            y=names,
            x=[v / divisor for v in nums],
            orientation="h",
            marker_color=color,
            text=text,
            textposition="outside",
            cliponaxis=False,
            hovertemplate="%{y}：%{text}<extra></extra>",
        )
    )
    top = max(nums, default=0.0) / divisor
    low = 0.0
    if percent and nums and min(nums) > 0.5:
        # Ratios all above one half (e.g. on-time closure): start just below the lowest bar so
        # differences of a few points stay visible.
        low = max(0.0, min(nums) - 0.05)
    fig.update_layout(
        title=dict(text=title, x=0, xanchor="left") if title else None,
        height=max(220, 90 + 28 * len(names)),
        margin=dict(l=10, r=60, t=40 if title else 10, b=10),
        xaxis=dict(
            # the axis in the labels' own style: 0, 2万, 4万 … (2.5万 where a tick falls between)
            **(dict(tickformat=".0%") if percent else _count_ticks(top, divisor, suffix)),
            # room for the value labels; a ratio axis never runs past 100%
            range=[low, (min(top * 1.15, 1.0) if percent else top * 1.15) if top else 1.0],
            gridcolor="#e3e7ed",
        ),
        yaxis=dict(autorange="reversed", automargin=True),
        plot_bgcolor="white",
        bargap=0.3,
    )
    return fig


def _count_ticks(top: float, divisor: float, suffix: str) -> dict[str, Any]:
    values, labels = axis_ticks(top, divisor, suffix)
    return dict(tickmode="array", tickvals=values, ticktext=labels)


def ratio_range(values: Sequence[float | None], *, floor: float = 0.0, pad: float = 0.05) -> list[float]:
    """A y (or x) range for a rate line of ratios 0..1 that keeps every point and marker inside
    the axes: ``pad`` of headroom above the highest point and below the lowest (never below
    ``floor``), at least 0.1 tall; above a point at 100% only 0.03, so the axis does not invite
    ticks past 100%. For ``yaxis=dict(range=kit.ratio_range(ys), tickformat=".0%", dtick=0.05)``."""
    nums = [float(v) for v in values if v is not None and v == v]
    if not nums:
        return [floor, 1.0 + pad]
    low, high = min(nums), max(nums)
    if high - low < 0.1:
        mid = (high + low) / 2
        low, high = mid - 0.05, mid + 0.05
    top = high + pad if high + pad <= 1.0 else max(high, 1.0) + min(pad, 0.03)
    return [max(floor, low - pad), top]


def bar_chart(
    labels: Sequence[Any],
    values: Sequence[float | None],
    *,
    key: str,
    title: str = "",
    color: str = "#1F6FB2",
    percent: bool = False,
    limit: int | None = None,
    where: Any = None,
) -> None:
    """Draw :func:`bar_figure` (horizontal bars for a breakdown: by street, department, type …)
    with :data:`CHART_CONFIG`, in ``where`` (a column or container; default: the page)."""
    import streamlit as st

    target = where if where is not None else st
    target.plotly_chart(
        bar_figure(labels, values, title=title, color=color, percent=percent, limit=limit),
        config=CHART_CONFIG,
        key=key,
    )
