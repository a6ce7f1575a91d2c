"""Cockpit exports a leader asks for: the numbers as Excel, the cockpit as a PNG or PDF snapshot.

* :func:`excel_bytes`: one summary sheet (every tile: value, target, deadline, status, as-of),
  one sheet with every tile's breakdown and series points, one per table-like tile, and a sheet
  saying what was exported, when, by whom and with which filters. Written by
  :func:`huizhi.exports.xlsx_bytes`: text is always a text cell, so formula-like text from a
  ledger (``=HYPERLINK(...)``) never becomes a live formula.
* :func:`snapshot_html`: a self-contained HTML page of the cockpit (plotly.js inline, no
  network), the same numbers, badges and charts as the page.
* :func:`snapshot`: that page rendered to PNG or PDF by headless Chromium in a subprocess
  (``HUIZHI_CHROMIUM`` or ``chromium`` on PATH). Kaleido (plotly's own exporter) also works
  with Debian's Chromium (``BROWSER_PATH=/usr/bin/chromium``) but renders one figure at a time
  and costs an extra dependency; one Chromium run renders the whole cockpit.
"""

from __future__ import annotations

import datetime as dt
import html
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from huizhi import district
from huizhi.cockpit.runner import TileResult, status_counts
from huizhi.cockpit.status import Status
from huizhi.cockpit.theme import STATUS_STYLE, THEME_COLORS
from huizhi.context import Filters
from huizhi.fmt import format_as_of, format_date, format_value
from huizhi.specs import Breakdown, Series, Theme, TopItems

if TYPE_CHECKING:
    import pandas as pd


class SnapshotUnavailable(RuntimeError):
    """No Chromium to render a snapshot with; ``user_message`` is Chinese."""

    user_message = "服务器未安装 Chromium，无法生成图片/PDF 快照。可下载 HTML 快照，在浏览器中打印为 PDF。"


def describe_filters(filters: Filters) -> str:
    parts = []
    if filters.streets:
        parts.append("镇街：" + "、".join(filters.streets))
    if filters.departments:
        parts.append("部门：" + "、".join(filters.departments))
    if filters.period is not None:
        start, end = filters.period
        parts.append(
            f"时间：{format_date(start) if start else '不限'} 至 {format_date(end) if end else '不限'}"
        )
    return "；".join(parts) or "全区、全部部门、全部时间"


def _department(result: TileResult) -> str:
    return "跨部门" if result.tile.department is None else district.department_name(result.tile.department)


# ----------------------------------------------------------------------------------------------
# Excel


def summary_frame(results: Sequence[TileResult]) -> pd.DataFrame:
    import pandas as pd

    rows = []
    for r in results:
        t, a = r.tile, r.assessment
        rows.append(
            {
                "主题": str(t.theme),
                "指标": t.title,
                "责任部门": _department(r),
                "数值": r.value.value if r.value is not None else None,
                "单位": t.unit,
                "显示值": format_value(r.value.value, t.unit) if r.value is not None else "",
                "目标值": r.target.value if r.target else None,
                "截止日期": r.target.deadline.isoformat() if r.target else "",
                "状态": str(a.status),
                "按计划应达": a.expected,
                "完成进度(%)": round(a.progress * 100, 1) if a.progress is not None else None,
                "数据截至(北京时间)": format_as_of(r.as_of),
                "说明": a.reason if r.ok else (r.error or ""),
            "备注": r.value.note if r.value is not None else "",
                "计划出处": r.target.source if r.target else "",
                "插件": r.plugin,
                "指标编号": t.id,
            }
        )
    return pd.DataFrame(rows)


def detail_frame(results: Sequence[TileResult]) -> pd.DataFrame:
    import pandas as pd

    rows = []
    for r in results:
        detail = r.value.detail if r.value is not None else None
        if isinstance(detail, Breakdown):
            for label, value in detail.items:
                rows.append(
                    {
                        "指标": r.tile.title,
                        "类型": f"按{detail.by}",
                        "项目": label,
                        "数值": value,
                        "单位": detail.unit if detail.unit is not None else r.tile.unit,
                    }
                )
        elif isinstance(detail, Series):
            for i, (x, value) in enumerate(detail.points):
                label = x.isoformat() if isinstance(x, dt.date) else str(x)
                if detail.partial and i == len(detail.points) - 1:
                    label += "（本月至今）" if isinstance(x, dt.date) else "（至今）"
                rows.append(
                    {
                        "指标": r.tile.title,
                        "类型": "趋势",
                        "项目": label,
                        "数值": value,
                        "单位": detail.unit if detail.unit is not None else r.tile.unit,
                    }
                )
    return pd.DataFrame(rows, columns=["指标", "类型", "项目", "数值", "单位"])


_SHEET_BAD = re.compile(r"[\[\]:*?/\\]")


def _sheet_name(title: str, used: set[str]) -> str:
    base = _SHEET_BAD.sub("_", title)[:28] or "表"
    name, n = base, 2
    while name in used:
        name = f"{base[:26]}_{n}"
        n += 1
    used.add(name)
    return name


def excel_sheets(
    results: Sequence[TileResult], filters: Filters, *, exported_by: str = "", now: dt.datetime | None = None
) -> dict[str, pd.DataFrame]:
    import pandas as pd

    now = now or dt.datetime.now(dt.UTC).replace(tzinfo=None)
    counts = status_counts(results)
    about = pd.DataFrame(
        [
            ("内容", "大兴区领导驾驶舱指标导出"),
            ("导出时间(北京时间)", format_as_of(now)),
            ("导出人", exported_by),
            ("筛选条件", describe_filters(filters)),
            ("指标数", str(len(results))),
            *((f"状态：{s}", str(n)) for s, n in counts.items() if n),
            ("说明", "文本单元格一律按文本写入，不含公式。数值单位见“单位”列；百分比指标的数值为百分数。"),
        ],
        columns=["项目", "内容"],
    )
    sheets: dict[str, pd.DataFrame] = {
        "驾驶舱指标": summary_frame(results),
        "分项与趋势": detail_frame(results),
    }
    used = set(sheets) | {"导出说明"}
    for r in results:
        detail = r.value.detail if r.value is not None else None
        if isinstance(detail, TopItems) and detail.rows:
            sheets[_sheet_name(r.tile.title, used)] = pd.DataFrame(
                list(detail.rows), columns=list(detail.columns)
            )
    sheets["导出说明"] = about
    return sheets


def excel_bytes(
    results: Sequence[TileResult], filters: Filters, *, exported_by: str = "", now: dt.datetime | None = None
) -> bytes:
    """The cockpit's numbers as an xlsx workbook (see the module docstring)."""
    from huizhi.exports import xlsx_bytes

    return xlsx_bytes(excel_sheets(results, filters, exported_by=exported_by, now=now))


# ----------------------------------------------------------------------------------------------
# Snapshot (HTML → PNG/PDF through headless Chromium)

CARD_HEIGHT = 318
COLUMNS = 4
PAGE_WIDTH = 1600

_CSS = f"""
* {{ box-sizing: border-box; }}
body {{ margin: 0; padding: 24px 28px; width: {PAGE_WIDTH}px; background: #F6F8FA; color: #202124;
  font-family: "Noto Sans CJK SC", "Source Han Sans SC", "PingFang SC", "Microsoft YaHei", sans-serif; }}
h1 {{ font-size: 26px; margin: 0 0 4px; }}
.sub {{ color: #5F6368; font-size: 14px; margin-bottom: 16px; }}
.counts {{ display: flex; gap: 12px; margin-bottom: 18px; }}
.count {{ flex: 1; background: #fff; border-radius: 8px; padding: 10px 14px; border-left: 6px solid; }}
.count b {{ display: block; font-size: 28px; }}
.count span {{ font-size: 13px; color: #5F6368; }}
h2 {{ font-size: 19px; margin: 18px 0 10px; padding-left: 10px; border-left: 6px solid; }}
.grid {{ display: grid; grid-template-columns: repeat({COLUMNS}, 1fr); gap: 12px; }}
.card {{ background: #fff; border: 1px solid #DADCE0; border-radius: 8px; padding: 10px 12px;
  height: {CARD_HEIGHT}px; overflow: hidden; page-break-inside: avoid; }}
.title {{ font-size: 14px; font-weight: 600; display: flex; justify-content: space-between; gap: 6px; }}
.badge {{ font-size: 12px; color: #fff; border-radius: 10px; padding: 1px 8px; white-space: nowrap; }}
.value {{ font-size: 28px; font-weight: 700; margin: 4px 0 0; }}
.meta {{ font-size: 12px; color: #5F6368; line-height: 1.5; }}
.err {{ color: #B3261E; font-size: 13px; margin-top: 8px; }}
.chart {{ height: 170px; }}
table {{ font-size: 12px; border-collapse: collapse; width: 100%; margin-top: 6px; }}
td, th {{ border-bottom: 1px solid #ECEFF1; padding: 2px 4px; text-align: left; }}
@media print {{ body {{ background: #fff; }} }}
"""


def _e(text: Any) -> str:
    return html.escape(str(text), quote=True)


def _card(r: TileResult, figures: Mapping[str, Any], chart_ids: list[tuple[str, str]]) -> str:
    from huizhi.cockpit.charts import figure_for, style

    t, a = r.tile, r.assessment
    color = STATUS_STYLE[a.status][1]
    parts = [
        f'<div class="card"><div class="title"><span>{_e(t.title)}</span>'
        f'<span class="badge" style="background:{color}">{_e(a.status)}</span></div>'
    ]
    if not r.ok:
        parts.append(f'<div class="err">{_e(r.error)}</div></div>')
        return "".join(parts)
    value = r.value.value if r.value is not None else None
    parts.append(f'<div class="value">{_e(format_value(value, t.unit))}</div>')
    meta = []
    if r.target is not None:
        meta.append(f"目标 {format_value(r.target.value, t.unit)} · {format_date(r.target.deadline)}前")
    meta.append(f"{_department(r)} · 数据截至 {format_as_of(r.as_of)}")
    parts.append(f'<div class="meta">{"<br>".join(_e(m) for m in meta)}</div>')
    detail = r.value.detail if r.value is not None else None
    fig = figures.get(t.id)
    if fig is None:
        fig = figure_for(detail, color=THEME_COLORS.get(t.theme), height=165)
    else:
        import plotly.graph_objects as go

        fig = style(go.Figure(fig), height=165)
    if fig is not None:
        div_id = f"chart-{t.id}"
        chart_ids.append((div_id, fig.to_json()))
        parts.append(f'<div class="chart" id="{div_id}"></div>')
    elif isinstance(detail, TopItems) and detail.rows:
        head = "".join(f"<th>{_e(c)}</th>" for c in detail.columns)
        body = "".join(
            "<tr>" + "".join(f"<td>{_e(v)}</td>" for v in row) + "</tr>" for row in detail.rows[:7]
        )
        parts.append(f"<table><tr>{head}</tr>{body}</table>")
    parts.append("</div>")
    return "".join(parts)


def snapshot_html(
    results: Sequence[TileResult],
    filters: Filters,
    *,
    title: str = "大兴区领导驾驶舱",
    figures: Mapping[str, Any] | None = None,
    now: dt.datetime | None = None,
    exported_by: str = "",
) -> tuple[str, int]:
    """(HTML, height in px) of a printable cockpit page; ``figures`` are custom figures by tile id
    (from tiles whose ``render`` returned one)."""
    import plotly.offline

    now = now or dt.datetime.now(dt.UTC).replace(tzinfo=None)
    figures = figures or {}
    counts = status_counts(results)
    shown = [
        s for s in (Status.OVERDUE, Status.AT_RISK, Status.ON_TRACK, Status.MET, Status.STALE, Status.DATA_DROP,
                    Status.NO_DATA)
        if s is not Status.DATA_DROP or counts[s]
    ]
    count_html = "".join(
        f'<div class="count" style="border-color:{STATUS_STYLE[s][1]}"><b>{counts[s]}</b><span>{_e(s)}</span></div>'
        for s in shown
    )
    chart_ids: list[tuple[str, str]] = []
    sections = []
    height = 24 + 40 + 36 + 86
    for theme in Theme:
        items = [r for r in results if r.tile.theme == theme]
        if not items:
            continue
        cards = "".join(_card(r, figures, chart_ids) for r in items)
        sections.append(
            f'<h2 style="border-color:{THEME_COLORS[theme]}">{_e(theme)}（{len(items)}）</h2><div class="grid">{cards}</div>'
        )
        rows = -(-len(items) // COLUMNS)
        height += 50 + rows * CARD_HEIGHT + (rows - 1) * 12
    height += 40
    plots = "".join(
        f"(function (f) {{ Plotly.newPlot({div_id!r}, f.data, f.layout, {{staticPlot: true}}); }})({spec});\n"
        for div_id, spec in chart_ids
    )
    doc = f"""<!doctype html><html lang="zh-CN"><head><meta charset="utf-8"><title>{_e(title)}</title>
<style>{_CSS}</style><script>{plotly.offline.get_plotlyjs()}</script></head><body>
<h1>{_e(title)}</h1>
<div class="sub">{_e(describe_filters(filters))} · 生成于 {_e(format_as_of(now))}（北京时间）{" · " + _e(exported_by) if exported_by else ""}</div>
<div class="counts">{count_html}</div>
{"".join(sections)}
<script>{plots}</script></body></html>"""
    return doc, height


def chromium_path() -> str | None:
    configured = os.environ.get("HUIZHI_CHROMIUM")
    if configured and Path(configured).exists():
        return configured
    for name in ("chromium", "chromium-browser", "google-chrome", "chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


def snapshot(
    html_doc: str, height: int, fmt: Literal["png", "pdf"] = "png", *, timeout: float = 60.0
) -> bytes:
    """Render a snapshot page to PNG or PDF with headless Chromium (a subprocess, no network)."""
    chromium = chromium_path()
    if chromium is None:
        raise SnapshotUnavailable("no chromium found (set HUIZHI_CHROMIUM)")
    with tempfile.TemporaryDirectory(prefix="huizhi-snapshot-") as tmp:
        page = Path(tmp) / "cockpit.html"
        page.write_text(html_doc, encoding="utf-8")
        out = Path(tmp) / f"cockpit.{fmt}"
        args = [
            chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-extensions",
            "--no-first-run",
            "--hide-scrollbars",
            f"--user-data-dir={Path(tmp) / 'profile'}",
            "--proxy-server=http://127.0.0.1:9",
            "--proxy-bypass-list=<-loopback>",
            "--virtual-time-budget=5000",
            "--run-all-compositor-stages-before-draw",
        ]
        if fmt == "png":
            args += [f"--window-size={PAGE_WIDTH + 56},{height}", f"--screenshot={out}"]
        else:
            args += ["--no-pdf-header-footer", f"--print-to-pdf={out}"]
        args.append(page.as_uri())
        proc = subprocess.run(args, capture_output=True, timeout=timeout, check=False)
        if not out.exists() or out.stat().st_size == 0:
            raise RuntimeError(f"chromium produced no {fmt} (exit {proc.returncode}): {proc.stderr[-400:]!r}")
        return out.read_bytes()
