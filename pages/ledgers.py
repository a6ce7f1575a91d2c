"""台账上传与版本: the Excel ledger workflow for every ledger any plugin declares.

template → upload → every bad cell listed (and a marked copy of the workbook) → preview of the
change by key → atomic commit → history → rollback. Nothing here is specific to one plugin, and
nothing here decides or changes anything: the page renders what the ledger service
(``ctx.ledgers``, :mod:`huizhi.ledgers`) returns and passes on what the person chose.
"""

from __future__ import annotations

import hashlib
import logging

import pandas as pd
import streamlit as st
from sqlalchemy.exc import OperationalError

from huizhi import district
from huizhi.access import AccessDenied
from huizhi.context import PageContext
from huizhi.db import UNREACHABLE, StoreUnavailable
from huizhi.fmt import format_as_of
from huizhi.ledgers import (
    MODE_LABELS,
    PREVIEW_ROWS,
    ConfirmationRequired,
    Mode,
    NotYours,
    Preview,
    StaleVersion,
    Unchanged,
)
from huizhi.specs import LedgerSpec, Perm

log = logging.getLogger(__name__)
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
TABLE_ROWS = 200  # problems listed on the page at once (a table, so long hints wrap)


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
    notice = st.empty()  # always there: the tabs below keep their place (and the open tab) when it goes
    if flash:  # (kind, text): what the last action said, drawn after the rerun it asked for
        kind, text = flash
        (notice.error if kind == "error" else notice.success)(text)
    try:
        ledger_sections(ctx, spec)
    except (StoreUnavailable, OperationalError) as exc:
        if not keep_for_retry(ctx, spec, exc):
            raise  # nothing of this person's to keep: the portal's page boundary says what happened


def ledger_sections(ctx: PageContext, spec: LedgerSpec) -> None:
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


def keep_for_retry(ctx: PageContext, spec: LedgerSpec, exc: Exception) -> bool:
    """The database went away while this person had a file in hand (checked, staged, or being
    staged): keep it in the session and offer 重试, so they need not upload it again. False
    when there is nothing to keep.

    Kept: the file's bytes and the mode, whether or not it was already checked; and the checked
    Upload (with its staged preview) when there is one. Nothing needs undoing: staging and
    commit each run in one transaction, which the lost connection rolled back, so the current
    version is what it was. The widgets were not drawn in this run (Streamlit forgets a file
    uploader that is not drawn), which is why the file is kept apart from them."""
    round_ = st.session_state.get(f"upload-round-{spec.id}", 0)
    kept = st.session_state.get(f"ingest-kept-{spec.id}")
    uploaded = st.session_state.get(f"upload-{spec.id}-{round_}")  # the uploader's file of the last run
    if uploaded is not None:
        mode = st.session_state.get(f"mode-{spec.id}", Mode.UPSERT)
        kept = {"name": uploaded.name, "data": uploaded.getvalue(), "mode": mode}
    if kept is None:
        return False
    st.session_state[f"ingest-kept-{spec.id}"] = kept
    log.error("ledger %s: database unavailable, the file %r is kept for a retry: %s", spec.id, kept["name"], exc)
    # a driver error that reached the page is a lost connection (the portal's boundary reads it so too)
    other = isinstance(exc, StoreUnavailable) and exc.kind != UNREACHABLE
    cause = exc.user_message.rstrip("。") if isinstance(exc, StoreUnavailable) and other else "数据库暂时无法连接"
    st.error(
        f"{cause}。本次没有提交任何内容，台账“{spec.title}”的当前版本未被改动。"
        f"您上传的文件“{kept['name']}”已保留：数据库恢复后点击“重试”即可继续，无需重新上传。"
        "请不要刷新浏览器页面，刷新会清空保留的文件。"
    )
    st.button("重试", type="primary", key=f"retry-{spec.id}", icon=":material/refresh:")  # pressed: a rerun
    return True


def upload_tab(ctx: PageContext, spec: LedgerSpec) -> None:
    # from the submodule: the package attribute `ingest` is the submodule once it is imported
    from huizhi.excel.pipeline import PHASE_LABELS

    scope = ctx.identity.upload_scope(spec)
    st.write(
        "上传填写好的台账（.xlsx，或 UTF-8 / GBK 编码的 .csv）。系统逐格检查，"
        "有错误时不会提交，并给出每个错误的位置和修改方法。"
    )
    if not scope.all_rows:
        st.info(
            f"您提交的是本单位（{'、'.join(sorted(scope.department_names))}）在这本全区台账中的部分："
            "上传的表格只应包含本单位的行；无论选择哪种更新方式，都只改动本单位的行，其他单位的行保持不变。"
        )
    kept = st.session_state.get(f"ingest-kept-{spec.id}")  # a file kept when the database went away
    if kept is not None and f"mode-{spec.id}" not in st.session_state:
        st.session_state[f"mode-{spec.id}"] = kept["mode"]  # the radio was forgotten with the page
    mode = choose_mode(spec, whole=scope.all_rows)
    # A new key after each commit empties the uploader, so the committed file is not shown again.
    round_ = st.session_state.get(f"upload-round-{spec.id}", 0)
    uploaded = st.file_uploader(
        "上传台账文件（.xlsx 或 .csv）", type=["xlsx", "csv"], key=f"upload-{spec.id}-{round_}"
    )
    if uploaded is not None:
        data, name = uploaded.getvalue(), uploaded.name
        st.session_state.pop(f"ingest-kept-{spec.id}", None)  # a file in the uploader is the one meant
    elif kept is not None:
        data, name = kept["data"], kept["name"]
        st.info(f"继续处理数据库中断前保留的文件“{name}”，无需重新上传；如需换一个文件，请在上方上传。")
    else:
        return
    digest = hashlib.sha256(data).hexdigest()
    state_key = f"ingest-{spec.id}"
    upload = st.session_state.get(state_key)
    if upload is None or upload.result.file_sha256 != digest or upload.mode != mode:
        if upload is not None and upload.preview is not None:
            ctx.ledgers.discard(upload.preview)
            st.session_state.pop(state_key, None)
        if ctx.ledgers.in_background(len(data)):
            upload = background_upload(ctx, spec, data, name, digest, mode)
            if upload is None:
                return  # still being checked (progress shown), or failed (said why)
        else:
            bar = st.progress(0.0, text="正在读取文件…")

            def on_progress(phase: str, fraction: float) -> None:
                bar.progress(overall_progress(phase, fraction), text=f"{PHASE_LABELS.get(phase, phase)}…")

            upload = ctx.ledgers.upload(spec.id, data, name, on_progress=on_progress, mode=mode)
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
    if upload.quiet_warnings:
        st.caption(
            f"其中 {upload.quiet_warnings:,} 处提醒所在的行与当前版本完全相同（本次上传不改变这些行），"
            "只计数，不再逐条列出。"
        )
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


def overall_progress(phase: str, fraction: float) -> float:
    """One bar over every phase an upload reports, in order."""
    from huizhi.excel.pipeline import PHASE_LABELS

    phases = [p for p in PHASE_LABELS if p != "commit"]
    done = (phases.index(phase) + min(max(fraction, 0.0), 1.0)) / len(phases) if phase in phases else 0.0
    return min(done, 1.0)


def background_upload(ctx: PageContext, spec: LedgerSpec, data: bytes, name: str, digest: str, mode: Mode):
    """A large file is checked by the task queue, not in this script run: queue it once, show
    its progress (polled every second), and return its Upload when done (None until then).
    The run is remembered in the session, so leaving the page and coming back picks it up."""
    from huizhi.excel.pipeline import PHASE_LABELS
    from huizhi.tasks import TaskFailed

    run_key = f"ingest-run-{spec.id}"
    run = st.session_state.get(run_key)
    if run is None or run["sha"] != digest or run["mode"] != mode:
        run = {"id": ctx.ledgers.start_upload(spec.id, data, name, mode=mode), "sha": digest, "mode": mode}
        st.session_state[run_key] = run
    if run.get("failed"):
        st.error(run["failed"])
        return None
    try:
        upload = ctx.ledgers.finished_upload(run["id"])
    except LookupError:
        pass
    except TaskFailed as exc:
        run["failed"] = exc.user_message
        st.error(exc.user_message)
        return None
    else:
        st.session_state.pop(run_key, None)
        return upload

    @st.fragment(run_every=1.0)
    def progress() -> None:
        status, phase, fraction = ctx.ledgers.upload_progress(run["id"])
        if status in ("succeeded", "failed"):
            st.rerun()  # the whole page: it shows the outcome
        if status == "queued":
            text = "文件较大，已交由后台处理，正在排队…"
        elif status == "retrying":
            text = "后台处理中断，正在自动重试…"
        else:
            text = f"后台处理中：{PHASE_LABELS.get(phase, '准备')}…"
        st.progress(overall_progress(phase, fraction) if status == "running" else 0.0, text=text)
        st.caption(f"文件 {len(data) / 1_048_576:.1f} MB。可以离开本页，稍后回来查看结果；处理完成前不会提交任何数据。")

    progress()
    return None


def _key_labels(spec: LedgerSpec) -> str:
    return "+".join(f"“{spec.column(k).label}”" for k in spec.key)


def choose_mode(spec: LedgerSpec, *, whole: bool) -> Mode:
    """The update mode, chosen explicitly; 新增和修改 first: it never deletes a row the file
    does not name, so the template with a few new rows does what its filler expects."""
    rows = "台账" if whole else "本单位的行"
    explained = {
        Mode.UPSERT: f"按{_key_labels(spec)}对应：已有的行按表格更新，新的行新增；表格里没有的行保持不变。",
        Mode.REPLACE: f"表格就是完整的{rows}：表格里没有的行将被删除。适合导出全表、修改后再上传。",
        Mode.DELETE: f"删除表格中列出{_key_labels(spec)}的行：只需填写{_key_labels(spec)}列，其他列可留空或删去。",
    }
    modes = list(explained)
    return st.radio(
        "更新方式", modes, format_func=lambda m: MODE_LABELS[m], captions=[explained[m] for m in modes],
        key=f"mode-{spec.id}",
    )  # fmt: skip


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
    # st.table wraps long text (st.dataframe in 1.67 cuts it off: the hint is the point of the
    # list) and shows text as text, HTML never rendered. Empty cells read "—", not None. In a
    # scrolling box of its own, the first TABLE_ROWS problems of the filter; all are in the
    # downloads below.
    shown = shown.astype(object).where(shown.notna(), "—")
    columns = ["级别", "行号", "列", "列名", "类型", "填写的值", "问题", "修改建议"]
    with st.container(height=min(560, 80 + 110 * len(shown)), border=True):  # hints wrap: rows are tall
        st.table(shown[columns].head(TABLE_ROWS).set_index("级别"))
    if len(shown) > TABLE_ROWS:
        st.caption(f"按当前筛选共 {len(shown):,} 处，此处列出前 {TABLE_ROWS} 处；全部问题见下载的工作簿（“错误清单”工作表）。")
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
            st.info("上传内容与当前版本相同，无需提交。" if preview.mode != Mode.DELETE else "没有需要删除的行，无需提交。")
    if preview.unmatched:
        shown = "、".join("/".join(map(str, k)) for k in preview.unmatched_keys)
        st.info(
            f"表格列出的 {preview.unmatched:,} 个{_key_labels(spec)}在当前版本中不存在，没有可删除的行"
            f"（{'例如 ' if preview.unmatched > len(preview.unmatched_keys) else ''}{shown}）。请核对是否填错。"
        )
    if preview.unchanged:
        return
    if preview.departments:
        st.caption("其他单位的行原样保留，计入“未变”。")
    confirmed = False
    if preview.needs_confirmation:
        why = {
            Mode.REPLACE: "“整表替换”会删除表格里没有的行：如果您只想补充或修改部分行，请改选“新增和修改”。",
            Mode.DELETE: "表格列出了当前版本的大部分行，请确认这正是要删除的行。",
            Mode.UPSERT: "",
        }[preview.mode]
        st.warning(
            f"本次提交将删除当前版本中 {preview.counts.removed:,} 行（{preview.removal_share:.0%}）。"
            f"{why}删除的行可通过回滚恢复。"
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
            st.session_state.pop(f"ingest-kept-{spec.id}", None)
            # empty the uploader too: the next rerun must not upload (and audit) the file again.
            # Rerun at once, as after a commit: this run already drew the uploader under its old
            # key, and a file dropped into that one would vanish on the next run (its key gone).
            st.session_state[f"upload-round-{spec.id}"] = st.session_state.get(f"upload-round-{spec.id}", 0) + 1
            st.session_state[f"flash-{spec.id}"] = ("error", getattr(exc, "user_message", str(exc)))
            st.rerun()
        st.session_state.pop(f"ingest-{spec.id}", None)
        st.session_state.pop(f"ingest-kept-{spec.id}", None)
        st.session_state[f"upload-round-{spec.id}"] = st.session_state.get(f"upload-round-{spec.id}", 0) + 1
        st.session_state[f"flash-{spec.id}"] = "success", (
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
            "方式": MODE_LABELS.get(v.mode or Mode.REPLACE, v.mode),
            "提交人": v.author,
            "时间（北京时间）": format_as_of(v.created_at),
            "文件": v.file_name or "—",
            "行数": f"{v.row_count:,}",
            "新增": f"{v.added:,}",
            "修改": f"{v.changed:,}",
            "删除": f"{v.removed:,}",
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
    # keyed by the current version: after any new version the choice starts again at the one before it
    choice = st.selectbox("恢复到", labels, key=f"rb-{spec.id}-{head.number if head else 0}")
    number = older[labels.index(choice)].number
    confirm = st.checkbox(f"我确认将“{spec.title}”恢复到第{number}版", key=f"rb-ok-{spec.id}-{head.number if head else 0}")
    if st.button("回滚", disabled=not confirm, key=f"rb-go-{spec.id}"):
        try:
            with st.spinner("正在回滚…"):
                version = ctx.ledgers.rollback(spec.id, number, expected_version=head.number if head else None)
        except (StaleVersion, Unchanged, AccessDenied) as exc:
            st.error(getattr(exc, "user_message", str(exc)))
            return
        # a preview staged before the rollback can no longer be committed: forget it and the file
        stale = st.session_state.pop(f"ingest-{spec.id}", None)
        if stale is not None and stale.preview is not None:
            ctx.ledgers.discard(stale.preview)
        st.session_state[f"upload-round-{spec.id}"] = st.session_state.get(f"upload-round-{spec.id}", 0) + 1
        st.session_state[f"flash-{spec.id}"] = ("success", f"已恢复第{number}版的数据，作为第{version.number}版。")
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
                        key=f"changes-{spec.id}-{later[0].number}")  # a new version starts at itself
    version = later[names.index(pick)]
    with st.spinner("正在比对…"):
        show_diff(spec, ctx.ledgers.changes(spec.id, version.number))


# -- template and export --------------------------------------------------------------------------


def template_tab(ctx: PageContext, spec: LedgerSpec) -> None:
    from huizhi.excel import build_template, export_csv, export_xlsx

    st.write("模板由台账定义自动生成：中文表头、下拉选项、填写提示（批注）和“填写说明”工作表。")
    # built when pressed, not on every run of the page: the template (example rows validated,
    # xlsxwriter's temp files) cost more than the rest of the page together (bench/load.py)
    st.download_button(
        "下载填报模板", lambda: build_template(spec), f"{spec.title}-模板.xlsx", XLSX, key=f"tpl-{spec.id}"
    )
    reader = ctx.ledger(spec.id)
    count = reader.count()
    st.write(f"导出您可见的当前数据（{count:,} 行{'，全部行' if reader.sees_all_rows else '，仅本部门的行'}）。")
    if st.button("准备导出", key=f"exp-{spec.id}"):
        table = ctx.ledgers.export(spec.id)
        e1, e2 = st.columns(2)
        e1.download_button("导出 Excel", export_xlsx(table, spec), f"{spec.title}.xlsx", XLSX, key=f"x-{spec.id}")
        e2.download_button("导出 CSV", export_csv(table, spec), f"{spec.title}.csv", "text/csv", key=f"c-{spec.id}")
