"""台账上传与版本: the Excel ledger workflow for every ledger any plugin declares.

template → upload → every bad cell listed (and a marked copy of the workbook) → preview of the
change by key → atomic commit → history → rollback. Nothing here is specific to one plugin.
"""

from __future__ import annotations

import hashlib

import pandas as pd
import pyarrow as pa
import streamlit as st

from huizhi import district
from huizhi.access import RowScope
from huizhi.cockpit import refresh_after_commit
from huizhi.context import PageContext
from huizhi.ledger_store import KeyConflict, OutOfScope, StaleVersion, Unchanged, fetch_arrow
from huizhi.specs import LedgerSpec, Perm

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
PREVIEW_ROWS = 200


def _readable_ledgers(ctx: PageContext) -> list[LedgerSpec]:
    """Ledgers this identity may read: those it may upload first, then its own department's."""
    identity = ctx.identity
    readable = [
        spec for spec, _ in ctx.host.registry.ledgers.values()
        if identity.allows(Perm.LEDGER_READ) and not identity.row_scope(spec).empty
    ]
    return sorted(readable, key=lambda s: (identity.upload_scope(s).empty,
                                           s.department not in identity.departments, s.title))


def render(ctx: PageContext) -> None:
    st.title("台账上传与版本")
    ledgers = _readable_ledgers(ctx)
    if not ledgers:
        st.info("您目前没有可查看的台账。")
        return
    by_title = {f"{s.title}（{district.department_name(s.department)}）": s for s in ledgers}
    wanted = ctx.params.get("ledger")
    titles = list(by_title)
    index = next((i for i, t in enumerate(titles) if by_title[t].id == wanted), 0)
    spec = by_title[st.selectbox("台账", titles, index=index)]
    head = ctx.host.store.head(spec.id)
    st.caption(
        (f"当前为第 {head.number} 版，更新于 {head.updated_at:%Y-%m-%d %H:%M}（UTC）。" if head else "该台账尚无数据。")
        + (f" 填报周期：{'每月' if spec.period == 'monthly' else '每季度'}。" if spec.period else "")
    )

    can_upload = not ctx.identity.upload_scope(spec).empty
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
    from huizhi.excel.ingest import PHASE_LABELS, ingest

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
    uploaded = st.file_uploader("选择文件", type=["xlsx", "csv"], key=f"upload-{spec.id}")
    if uploaded is None:
        return
    data = uploaded.getvalue()
    digest = hashlib.sha256(data).hexdigest()
    state_key = f"ingest-{spec.id}"
    result = st.session_state.get(state_key)
    if result is None or result.file_sha256 != digest:
        bar = st.progress(0.0, text="正在读取文件…")
        phases = list(PHASE_LABELS)

        def on_progress(phase: str, fraction: float) -> None:
            done = (phases.index(phase) + min(max(fraction, 0.0), 1.0)) / len(phases) if phase in phases else 0.0
            bar.progress(min(done, 1.0), text=f"{PHASE_LABELS.get(phase, phase)}…")

        result = ingest(data, uploaded.name, spec, on_progress=on_progress)
        bar.empty()
        st.session_state[state_key] = result
        ctx.audit(
            "ledger.upload", f"ledger:{spec.id}", "ok" if result.ok else "rejected",
            file_name=uploaded.name, sha256=digest, rows=result.stats.rows, errors=result.stats.errors,
            warnings=result.stats.warnings, rejected=result.rejection.message if result.rejection else None,
        )

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
    if result.ok:
        preview_and_commit(ctx, spec, result, scope)
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


def preview_and_commit(ctx: PageContext, spec: LedgerSpec, result, scope: RowScope) -> None:
    from huizhi.excel import diff_frames

    store = ctx.host.store
    head = store.head(spec.id)
    st.subheader("变更预览")
    if not scope.all_rows:
        import pyarrow.compute as pc

        owners = result.table.column(spec.department_column)
        foreign = pc.invert(pc.is_in(owners, value_set=pa.array(sorted(scope.department_names))))
        foreign = pc.fill_null(foreign, True)
        if pc.any(foreign).as_py():
            rows = pc.filter(result.row_numbers, foreign).to_pylist()[:20]
            st.error(
                f"表格中有 {pc.sum(foreign).as_py():,} 行不属于本单位（{spec.column(spec.department_column).label}"
                f"不是{'、'.join(sorted(scope.department_names))}），例如第 {'、'.join(map(str, rows))} 行。"
                "本单位只能提交本单位的行，请删除这些行后重新上传。"
            )
            return
    if head is not None:
        with st.spinner("正在与当前版本比对…"):
            current = store.scoped_select(spec.id, scope)  # exactly the rows this upload replaces
            diff = diff_frames(fetch_arrow(ctx.host.engine, current, spec), result.table, spec.key,
                               detail_limit=PREVIEW_ROWS)
        show_diff(spec, diff)
        if diff.added == diff.changed == diff.removed == 0:
            st.info("上传内容与当前版本相同，无需提交。")
            return
        current_rows = diff.removed + diff.changed + diff.unchanged
        if current_rows and diff.removed / current_rows > 0.5:
            st.warning(
                f"本次提交将删除当前版本中 {diff.removed:,} 行（{diff.removed / current_rows:.0%}）。"
                "上传的表格会整体替换当前数据：如果您只想补充或修改部分行，请先在“模板与导出”中导出"
                "当前数据，在导出的表格上修改后再上传。删除的行可通过回滚恢复。"
            )
            if not st.checkbox(f"我确认删除这 {diff.removed:,} 行", key=f"confirm-removal-{spec.id}"):
                return
    else:
        st.metric("新增", f"{result.stats.rows:,}")
    previewed = head.version_id if head else None
    if st.button("提交为新版本", type="primary", key=f"commit-{spec.id}"):
        try:
            with st.spinner("正在提交…"):
                version = store.commit(
                    spec.id, result.table, created_by=ctx.identity.name or ctx.identity.subject,
                    expected_version_id=previewed, file_name=result.file_name, file_sha256=result.file_sha256,
                    replace_scope=scope,
                )
        except (OutOfScope, KeyConflict) as exc:
            ctx.audit("ledger.commit", f"ledger:{spec.id}", "rejected", reason=str(exc))
            st.error(exc.user_message)
            return
        except StaleVersion as exc:
            ctx.audit("ledger.commit", f"ledger:{spec.id}", "rejected", reason="stale preview")
            st.error(exc.user_message)
            return
        except Unchanged as exc:
            st.info(exc.user_message)
            return
        ctx.audit(
            "ledger.commit", f"ledger:{spec.id}", version=version.number, file_name=result.file_name,
            sha256=result.file_sha256, rows=version.row_count, added=version.added, changed=version.changed,
            removed=version.removed,
        )
        st.session_state.pop(f"ingest-{spec.id}", None)
        refresh_after_commit(ctx.host, [spec.id])
        st.success(
            f"已提交为第 {version.number} 版：新增 {version.added:,}，修改 {version.changed:,}，"
            f"删除 {version.removed:,}，共 {version.row_count:,} 行。"
        )


# -- history and rollback -------------------------------------------------------------------------

KIND_NAMES = {"upload": "上传", "seed": "演示数据", "rollback": "回滚"}


def history_tab(ctx: PageContext, spec: LedgerSpec) -> None:
    versions = ctx.host.store.versions(spec.id)
    if not versions:
        st.info("尚无版本。")
        return
    head = ctx.host.store.head(spec.id)
    rows = [
        {
            "版本": f"第{v.number}版" + ("（当前）" if head and v.id == head.version_id else ""),
            "类型": KIND_NAMES.get(v.kind, v.kind) + (f"（恢复第{v.restored_from}版）" if v.restored_from else ""),
            "提交人": v.created_by,
            "时间（UTC）": v.created_at.strftime("%Y-%m-%d %H:%M"),
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
    if not ctx.identity.allows(Perm.LEDGER_ROLLBACK, spec.department):
        return
    older = [v for v in versions if head is None or v.id != head.version_id]
    if not older:
        return
    st.subheader("回滚")
    st.caption("回滚会把所选版本的数据恢复为一个新版本，原有的所有版本都会保留。")
    choice = st.selectbox("恢复到", [f"第{v.number}版（{v.created_at:%Y-%m-%d %H:%M}，{v.row_count:,} 行）" for v in older],
                          key=f"rb-{spec.id}")
    number = older[[f"第{v.number}版（{v.created_at:%Y-%m-%d %H:%M}，{v.row_count:,} 行）" for v in older].index(choice)].number
    confirm = st.checkbox(f"我确认将“{spec.title}”恢复到第{number}版", key=f"rb-ok-{spec.id}")
    if st.button("回滚", disabled=not confirm, key=f"rb-go-{spec.id}"):
        try:
            version = ctx.host.store.rollback(
                spec.id, number, created_by=ctx.identity.name or ctx.identity.subject,
                expected_version_id=head.version_id if head else None,
            )
        except (StaleVersion, Unchanged) as exc:
            st.error(exc.user_message)
            return
        refresh_after_commit(ctx.host, [spec.id])
        ctx.audit("ledger.rollback", f"ledger:{spec.id}", to_version=number, new_version=version.number,
                  added=version.added, changed=version.changed, removed=version.removed)
        st.success(f"已恢复第{number}版的数据，作为第{version.number}版。")
        st.rerun()


def version_changes(ctx: PageContext, spec: LedgerSpec, versions) -> None:
    """What one version changed against the one before it, within what this person may read.

    Every version keeps its rows, so the change behind an audit entry (commit or rollback, which
    records the version number) can always be recomputed exactly.
    """
    from huizhi.excel import diff_frames

    later = [v for v in versions if v.number > 1]
    if not later:
        return
    st.subheader("版本变更明细")
    names = [f"第{v.number}版" for v in later]
    wanted = f"第{ctx.params.get('version')}版"
    pick = st.selectbox("查看该版相对上一版的变更", names, index=names.index(wanted) if wanted in names else 0,
                        key=f"changes-{spec.id}")
    version = later[names.index(pick)]
    previous = ctx.host.store.version(spec.id, version.number - 1)
    scope = ctx.identity.row_scope(spec)
    store, engine = ctx.host.store, ctx.host.engine
    with st.spinner("正在比对…"):
        old = fetch_arrow(engine, store.scoped_select(spec.id, scope, previous.id), spec)
        new = fetch_arrow(engine, store.scoped_select(spec.id, scope, version.id), spec)
        show_diff(spec, diff_frames(old, new, spec.key, detail_limit=PREVIEW_ROWS))


# -- template and export --------------------------------------------------------------------------


def template_tab(ctx: PageContext, spec: LedgerSpec) -> None:
    from huizhi.excel import build_template, export_csv, export_xlsx

    st.write("模板由台账定义自动生成：中文表头、下拉选项、填写提示（批注）和“填写说明”工作表。")
    st.download_button("下载填报模板", build_template(spec), f"{spec.title}-模板.xlsx", XLSX, key=f"tpl-{spec.id}")
    reader = ctx.ledger(spec.id)
    count = reader.count()
    st.write(f"导出您可见的当前数据（{count:,} 行{'，全部行' if reader.sees_all_rows else '，仅本部门的行'}）。")
    if st.button("准备导出", key=f"exp-{spec.id}"):
        table = fetch_arrow(ctx.host.engine, reader.select, spec)
        ctx.audit("ledger.export", f"ledger:{spec.id}", rows=table.num_rows)
        e1, e2 = st.columns(2)
        e1.download_button("导出 Excel", export_xlsx(table, spec), f"{spec.title}.xlsx", XLSX, key=f"x-{spec.id}")
        e2.download_button("导出 CSV", export_csv(table, spec), f"{spec.title}.csv", "text/csv", key=f"c-{spec.id}")
