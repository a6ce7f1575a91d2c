"""台账上传与版本: the Excel ledger workflow for every ledger any plugin declares.

template → upload → every bad cell listed (and a marked copy of the workbook) → preview of the
change by key → atomic commit → history → rollback. Nothing here is specific to one plugin, and
nothing here decides or changes anything: the page renders what the ledger service
(``ctx.ledgers``, :mod:`huizhi.ledgers`) returns and passes on what the person chose.
"""

from __future__ import annotations

import hashlib

import pandas as pd
import streamlit as st

from huizhi import district
from huizhi.access import AccessDenied
from huizhi.context import PageContext
from huizhi.fmt import format_as_of
from huizhi.ledgers import PREVIEW_ROWS, ConfirmationRequired, NotYours, Preview, StaleVersion, Unchanged
from huizhi.specs import LedgerSpec, Perm

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _readable_ledgers(ctx: PageContext) -> list[LedgerSpec]:
    """Ledgers this identity may read: those it may upload first, then its own department's."""
    return sorted(ctx.ledgers_readable(), key=lambda s: (not ctx.can(Perm.LEDGER_UPLOAD, s.id),
                                                         s.department not in ctx.identity.departments, s.title))


def render(ctx: PageContext) -> None:
    st.title("台账上传与版本")
    ledgers = _readable_ledgers(ctx)
    if not ledgers:
        st.info("您目前没有可查看的台账。")
        return
    by_title = {f"{s.title}（{district.department_name(s.department)}）": s for s in ledgers}
    wanted = ctx.params.get("ledger")
    if wanted and all(s.id != wanted for s in ledgers):  # a typed or shared link to a ledger not theirs
        raise ctx.deny(f"ledger:{wanted}", "query parameter", "您没有查看该台账的权限，或该台账不存在。已为您显示可查看的台账。")
    titles = list(by_title)
    index = next((i for i, t in enumerate(titles) if by_title[t].id == wanted), 0)
    spec = by_title[st.selectbox("台账", titles, index=index)]
    flash = st.session_state.pop(f"flash-{spec.id}", None)
    if flash:
        st.success(flash)
    head = ctx.ledgers.head(spec.id)
    st.caption(
        (f"当前为第 {head.number} 版，更新于 {format_as_of(head.updated_at)}（北京时间）。" if head else "该台账尚无数据。")
        + (f" 填报周期：{'每月' if spec.period == 'monthly' else '每季度'}。" if spec.period else "")
    )

    can_upload = ctx.can(Perm.LEDGER_UPLOAD, spec.id)
    sections = {"上传新版本": upload_tab} if can_upload else {}
    sections |= {"版本历史": history_tab, "模板与导出": template_tab}
    if "version" in ctx.params:  # a link to one version (e.g. from an audit entry) opens history
        sections = {"版本历史": history_tab} | sections
    for tab, draw in zip(st.tabs(list(sections)), sections.values(), strict=True):
        with tab:
            draw(ctx, spec)


# -- upload -------------------------------------------------------------------------------------


def upload_tab(ctx: PageContext, spec: LedgerSpec) -> None:
    # from the submodule: the package attribute `ingest` is the submodule once it is imported
    from huizhi.excel.ingest import PHASE_LABELS

    scope = ctx.identity.upload_scope(spec)
    st.write(
        "上传填写好的台账（.xlsx，或 UTF-8 / GBK 编码的 .csv）。系统逐格检查，"
        "有错误时不会提交，并给出每个错误的位置和修改方法。"
    )
    if not scope.all_rows:
        st.info(
            f"您提交的是本单位（{'、'.join(sorted(scope.department_names))}）在这本全区台账中的部分："
            "上传的表格只应包含本单位的行，提交后替换本单位原有的行，其他单位的行保持不变。"
        )
    # A new key after each commit empties the uploader, so the committed file is not shown again.
    round_ = st.session_state.get(f"upload-round-{spec.id}", 0)
    uploaded = st.file_uploader("选择文件", type=["xlsx", "csv"], key=f"upload-{spec.id}-{round_}")
    if uploaded is None:
        return
    data = uploaded.getvalue()
    digest = hashlib.sha256(data).hexdigest()
    state_key = f"ingest-{spec.id}"
    upload = st.session_state.get(state_key)
    if upload is None or upload.result.file_sha256 != digest:
        if upload is not None and upload.preview is not None:
            ctx.ledgers.discard(upload.preview)
        bar = st.progress(0.0, text="正在读取文件…")
        phases = [p for p in PHASE_LABELS if p != "commit"]  # what an upload reports, in order

        def on_progress(phase: str, fraction: float) -> None:
            done = (phases.index(phase) + min(max(fraction, 0.0), 1.0)) / len(phases) if phase in phases else 0.0
            bar.progress(min(done, 1.0), text=f"{PHASE_LABELS.get(phase, phase)}…")

        upload = ctx.ledgers.upload(spec.id, data, uploaded.name, on_progress=on_progress)
        bar.empty()
        st.session_state[state_key] = upload
    result = upload.result

    if result.rejection:
        st.error(f"文件无法读取：{result.rejection.message}")
        st.info(f"怎么办：{result.rejection.hint}")
        return

    c1, c2, c3 = st.columns(3)
    c1.metric("数据行", f"{result.stats.rows:,}")
    c2.metric("错误", f"{result.stats.errors:,}")
    c3.metric("提醒", f"{result.stats.warnings:,}")
    if result.sheet:
        st.caption(f"读取的工作表：“{result.sheet}”，表头在第 {result.header_row} 行。")
    if result.stats.errors:
        st.error(f"发现 {result.stats.errors:,} 处错误，修改后重新上传。以下列出每个错误的位置（Excel 行号、列）和修改方法。")
    elif result.stats.warnings:
        st.warning(f"没有错误，有 {result.stats.warnings:,} 处提醒（不影响提交），请确认。")
    elif result.ok:
        st.success("全部单元格检查通过。")

    if result.problems_table.num_rows:
        problems_section(spec, result)
    if upload.refusal:
        st.error(upload.refusal)
    elif upload.preview is not None:
        preview_and_commit(ctx, spec, upload.preview)
    elif result.stats.rows == 0 and not result.stats.errors:
        st.warning("文件中没有数据行。请在表头下方填写数据后再上传。")


def problems_section(spec: LedgerSpec, result) -> None:
    summary = pd.DataFrame(result.summary())
    if not summary.empty:
        st.subheader("问题汇总")
        st.dataframe(
            summary.rename(columns={"header": "列名", "kind_label": "问题类型", "count": "数量", "severity": "级别"})[
                ["列名", "问题类型", "级别", "数量"]
            ].replace({"级别": {"error": "错误", "warning": "提醒"}}),
            hide_index=True, width="stretch",
        )
    st.subheader("问题明细")
    table = result.problems_display()
    f1, f2, f3 = st.columns(3)
    level = f1.selectbox("级别", ["全部", "错误", "提醒"], key=f"lvl-{spec.id}")
    column = f2.selectbox("列", ["全部", *sorted({c for c in table["列名"].dropna()})], key=f"col-{spec.id}")
    kind = f3.selectbox("类型", ["全部", *sorted(set(table["类型"]))], key=f"kind-{spec.id}")
    shown = table
    if level != "全部":
        shown = shown[shown["级别"] == level]
    if column != "全部":
        shown = shown[shown["列名"] == column]
    if kind != "全部":
        shown = shown[shown["类型"] == kind]
    # st.dataframe shows text as text: HTML in a cell is never rendered.
    st.dataframe(shown, hide_index=True, width="stretch", height=min(420, 40 + 35 * len(shown)))
    if result.stats.problems_listed < result.stats.errors + result.stats.warnings:
        st.caption(f"共 {result.stats.errors + result.stats.warnings:,} 处问题，此处列出前 {result.stats.problems_listed:,} 处。")
    d1, d2 = st.columns(2)
    stem = result.file_name.rsplit(".", 1)[0]
    # Callables: the workbooks are built when the button is pressed, not on every redraw
    # (the marked copy of a 100k-row file takes about 10 s).
    d1.download_button(
        "下载标注错误的工作簿", result.marked_workbook, f"{stem}-已标注.xlsx", XLSX, on_click="ignore",
        help="您上传的表格原样返回：有问题的单元格标红并附批注，另附“错误清单”工作表。",
    )
    if result.stats.errors:
        d2.download_button(
            "只下载有错误的行", result.bad_rows_workbook, f"{stem}-错误行.xlsx", XLSX, on_click="ignore",
            help="只含有错误的行（保留原行号）并附批注，适合大表逐行修改。",
        )


def _labelled(spec: LedgerSpec, table) -> pd.DataFrame:
    """Detail rows with Chinese headers (and column names in ``column`` cells as their labels)."""
    labels = {c.name: c.label for c in spec.columns}
    df = table.to_pandas()
    if "column" in df.columns:
        df["column"] = df["column"].map(lambda c: labels.get(c, c))
    return df.rename(columns={**labels, "column": "列", "old": "旧值", "new": "新值"})


def show_diff(spec: LedgerSpec, diff) -> None:
    """Counts by kind, then the first rows of each kind (changed cells as old → new)."""
    c1, c2, c3, c4 = st.columns(4)
    c1.metric("新增", f"{diff.added:,}")
    c2.metric("修改", f"{diff.changed:,}")
    c3.metric("删除", f"{diff.removed:,}")
    c4.metric("未变", f"{diff.unchanged:,}")
    if diff.added:
        with st.expander(f"新增的行（前 {PREVIEW_ROWS} 行）"):
            st.dataframe(_labelled(spec, diff.added_rows), hide_index=True, width="stretch")
    if diff.changed:
        with st.expander(f"修改的单元格：旧值 → 新值（前 {PREVIEW_ROWS} 处）"):
            st.dataframe(_labelled(spec, diff.changed_cells), hide_index=True, width="stretch")
    if diff.removed:
        with st.expander(f"删除的行（前 {PREVIEW_ROWS} 行）"):
            st.dataframe(_labelled(spec, diff.removed_rows), hide_index=True, width="stretch")


def preview_and_commit(ctx: PageContext, spec: LedgerSpec, preview: Preview) -> None:
    st.subheader("变更预览")
    if preview.base_version is None:
        st.metric("新增", f"{preview.counts.added:,}")
    else:
        show_diff(spec, preview.diff)
        if preview.unchanged:
            st.info("上传内容与当前版本相同，无需提交。")
            return
    if preview.departments:
        st.caption("其他单位的行原样保留，计入“未变”。")
    confirmed = False
    if preview.needs_confirmation:
        st.warning(
            f"本次提交将删除当前版本中 {preview.counts.removed:,} 行（{preview.removal_share:.0%}）。"
            "上传的表格会整体替换当前数据：如果您只想补充或修改部分行，请先在“模板与导出”中导出"
            "当前数据，在导出的表格上修改后再上传。删除的行可通过回滚恢复。"
        )
        confirmed = st.checkbox(f"我确认删除这 {preview.counts.removed:,} 行", key=f"confirm-removal-{spec.id}-{preview.id}")
        if not confirmed:
            return
    if st.button("提交为新版本", type="primary", key=f"commit-{spec.id}"):
        try:
            with st.spinner("正在提交…"):
                version = ctx.ledgers.commit(preview, confirm_removal=confirmed)
        except (StaleVersion, Unchanged, NotYours, ConfirmationRequired, AccessDenied) as exc:
            st.session_state.pop(f"ingest-{spec.id}", None)
            st.error(getattr(exc, "user_message", str(exc)))
            return
        st.session_state.pop(f"ingest-{spec.id}", None)
        st.session_state[f"upload-round-{spec.id}"] = st.session_state.get(f"upload-round-{spec.id}", 0) + 1
        st.session_state[f"flash-{spec.id}"] = (
            f"已提交为第 {version.number} 版：新增 {version.added:,}，修改 {version.changed:,}，"
            f"删除 {version.removed:,}，共 {version.row_count:,} 行。"
        )
        st.rerun()


# -- history and rollback -------------------------------------------------------------------------

KIND_NAMES = {"upload": "上传", "seed": "演示数据", "rollback": "回滚"}


def history_tab(ctx: PageContext, spec: LedgerSpec) -> None:
    versions = ctx.ledgers.versions(spec.id)
    if not versions:
        st.info("尚无版本。")
        return
    head = ctx.ledgers.head(spec.id)
    rows = [
        {
            "版本": f"第{v.number}版" + ("（当前）" if head and v.id == head.version_id else ""),
            "类型": KIND_NAMES.get(v.kind, v.kind) + (f"（恢复第{v.restored_from}版）" if v.restored_from else ""),
            "提交人": v.author,
            "时间（北京时间）": format_as_of(v.created_at),
            "文件": v.file_name or "",
            "行数": v.row_count,
            "新增": v.added,
            "修改": v.changed,
            "删除": v.removed,
        }
        for v in versions
    ]
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")
    version_changes(ctx, spec, versions)
    if not ctx.can(Perm.LEDGER_ROLLBACK, spec.id):
        return
    older = [v for v in versions if head is None or v.id != head.version_id]
    if not older:
        return
    st.subheader("回滚")
    st.caption("回滚会把所选版本的数据恢复为一个新版本，原有的所有版本都会保留。")
    labels = [f"第{v.number}版（{format_as_of(v.created_at)}，{v.row_count:,} 行）" for v in older]
    choice = st.selectbox("恢复到", labels, key=f"rb-{spec.id}")
    number = older[labels.index(choice)].number
    confirm = st.checkbox(f"我确认将“{spec.title}”恢复到第{number}版", key=f"rb-ok-{spec.id}-{head.number if head else 0}")
    if st.button("回滚", disabled=not confirm, key=f"rb-go-{spec.id}"):
        try:
            with st.spinner("正在回滚…"):
                version = ctx.ledgers.rollback(spec.id, number, expected_version=head.number if head else None)
        except (StaleVersion, Unchanged, AccessDenied) as exc:
            st.error(getattr(exc, "user_message", str(exc)))
            return
        st.session_state[f"flash-{spec.id}"] = f"已恢复第{number}版的数据，作为第{version.number}版。"
        st.rerun()


def version_changes(ctx: PageContext, spec: LedgerSpec, versions) -> None:
    """What one version changed against the one before it, within what this person may read.

    Every version keeps its rows, so the change behind an audit entry (commit or rollback, which
    records the version number) can always be recomputed exactly.
    """
    later = [v for v in versions if v.number > 1]
    if not later:
        return
    st.subheader("版本变更明细")
    names = [f"第{v.number}版" for v in later]
    wanted = f"第{ctx.params.get('version')}版"
    pick = st.selectbox("查看该版相对上一版的变更", names, index=names.index(wanted) if wanted in names else 0,
                        key=f"changes-{spec.id}")
    version = later[names.index(pick)]
    with st.spinner("正在比对…"):
        show_diff(spec, ctx.ledgers.changes(spec.id, version.number))


# -- template and export --------------------------------------------------------------------------


def template_tab(ctx: PageContext, spec: LedgerSpec) -> None:
    from huizhi.excel import build_template, export_csv, export_xlsx

    st.write("模板由台账定义自动生成：中文表头、下拉选项、填写提示（批注）和“填写说明”工作表。")
    st.download_button("下载填报模板", build_template(spec), f"{spec.title}-模板.xlsx", XLSX, key=f"tpl-{spec.id}")
    reader = ctx.ledger(spec.id)
    count = reader.count()
    st.write(f"导出您可见的当前数据（{count:,} 行{'，全部行' if reader.sees_all_rows else '，仅本部门的行'}）。")
    if st.button("准备导出", key=f"exp-{spec.id}"):
        table = ctx.ledgers.export(spec.id)
        e1, e2 = st.columns(2)
        e1.download_button("导出 Excel", export_xlsx(table, spec), f"{spec.title}.xlsx", XLSX, key=f"x-{spec.id}")
        e2.download_button("导出 CSV", export_csv(table, spec), f"{spec.title}.csv", "text/csv", key=f"c-{spec.id}")
