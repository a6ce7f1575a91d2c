"""平台管理: plugin status, role mapping with a sign-in simulator, audit log, system information
(with the deployment checks of ``huizhi doctor``)."""

from __future__ import annotations

import datetime as dt
import json

import pandas as pd
import streamlit as st

from huizhi import HOST_API_VERSION
from huizhi.access import ROLE_LABELS, check_access_config, identity_from_claims
from huizhi.audit import ACTION_LABELS
from huizhi.clock import BEIJING, beijing_today
from huizhi.context import PageContext
from huizhi.db import current_revision
from huizhi.doctor import CHECK_LABELS, FAIL, run_checks
from huizhi.doctor import STATUS_LABELS as STATUS_LABELS_DOCTOR
from huizhi.exports import csv_bytes, xlsx_bytes
from huizhi.fmt import format_as_of
from huizhi.kit import day_input
from huizhi.ledgers import MODE_LABELS
from huizhi.portal import host_of
from huizhi.specs import Perm

STATUS_LABELS = {"enabled": "已启用", "disabled": "已停用", "not loaded": "未加载"}


def plugins_page(ctx: PageContext) -> None:
    host = host_of(ctx)
    st.title("插件状态")
    st.caption(f"主机 API 版本 {HOST_API_VERSION}。停用或启用插件后，重启平台进程生效。")
    rows = [
        {
            "插件": r.name,
            "名称": r.title,
            "版本": r.version,
            "部门": host.settings.departments.name(r.department) if r.info else "—",
            "状态": STATUS_LABELS[r.status],
            "原因": r.reason,
            "页面": len(r.pages),
            "台账": len(r.ledgers),
            "指标卡": len(r.tiles),
            "连接器": len(r.connectors),
            "发行包": r.distribution or (f"声明文件 {r.declared.name}" if r.declared else ""),
        }
        for r in host.registry.plugins.values()
    ]
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")
    problems = host.registry.problems()
    if problems:
        st.error(f"{len(problems)} 个插件未能加载。其余插件照常运行。")
        for r in problems:
            if r.reason_zh:  # a declarative file: every problem on its own line, in Chinese
                st.markdown(f"- **{r.name}**（声明文件 {r.declared.name if r.declared else ''}）：")
                st.code(r.reason_zh, language=None)
            else:
                st.markdown(f"- **{r.name}**：{r.reason}")

    _install_declarative(ctx)

    st.subheader("启用 / 停用")
    switchable = [r.name for r in host.registry.plugins.values() if not r.builtin]
    if not switchable:
        st.info("没有可切换的部门插件。")
        return
    name = st.selectbox("插件", switchable)
    record = host.registry.plugins[name]
    admin_off = record.reason == "disabled by a platform admin"
    if admin_off and st.button("启用此插件", type="primary"):
        host.set_plugin_enabled(ctx.identity, name, True)
        st.success("已启用，重启平台后生效。")
    elif not admin_off and st.button("停用此插件"):
        host.set_plugin_enabled(ctx.identity, name, False)
        st.success("已停用，重启平台后生效。")


def _install_declarative(ctx: PageContext) -> None:
    """安装声明式插件: upload a .toml (and its demo rows), checked before it is saved."""
    from huizhi.declarative import DeclarationError

    host = host_of(ctx)
    st.subheader("安装声明式插件")
    folder = host.settings.declarative_dir
    if folder is None:
        st.info(
            "未配置声明式插件文件夹。请在 huizhi.toml 中设置 [plugins] declarative_dir（或环境变量 "
            "HUIZHI_DECLARATIVE_DIR），重启后即可在此安装。写法见 docs/declarative-plugins.md。"
        )
        return
    st.caption(
        f"上传部门的台账声明文件（.toml），如有演示数据可一并上传它引用的 CSV。文件先逐项检查，"
        f"无误后保存到 {folder}，重启平台后生效。"
    )
    uploads = st.file_uploader(
        "声明文件", type=["toml", "csv"], accept_multiple_files=True, key="declarative-upload"
    )
    if not uploads or not st.button("检查并安装", type="primary", key="declarative-install"):
        return
    files = {u.name: u.getvalue() for u in uploads}
    try:
        plugin = host.install_declarative(ctx.identity, files)
    except DeclarationError as exc:
        st.error(f"声明文件有 {len(exc.problems)} 处问题，未安装。请修改后重新上传：")
        st.code(exc.chinese(), language=None)
        return
    spec = plugin.ledger
    st.success(
        f"已安装“{plugin.declaration.info.title}”（插件 {plugin.name}，台账“{spec.title}”{len(spec.columns)} 列，"
        f"{len(plugin.huizhi_pages())} 个页面，{len(plugin.huizhi_tiles())} 个指标卡）。重启平台后生效。"
    )


def _demo_identities() -> dict[str, dict]:
    """The demo identities' claims, to try the mapping without signing anyone in."""
    from huizhi.demo import DEMO_IDENTITIES

    return {f"{i.name}（{i.sub}）": i.claims() for i in DEMO_IDENTITIES}


def access_page(ctx: PageContext) -> None:
    host = host_of(ctx)
    access = host.settings.access
    st.title("角色映射与模拟登录")
    st.caption(
        f"按身份令牌中的声明（默认声明：`{access.get('claim', 'groups')}`）分配角色与部门；"
        "未匹配任何规则的账号无任何权限。每次登录时重新计算。"
    )
    departments = host.settings.departments
    problems = check_access_config(access, departments)
    for problem in problems:
        st.error(f"配置错误：{problem}")
    rules = [
        {
            "声明": r.get("claim", access.get("claim", "groups")),
            "取值": r.get("value"),
            "角色": ROLE_LABELS.get(r.get("role"), r.get("role")),
            "部门": departments.name(r["department"]) if r.get("department") else "全区",
        }
        for r in access.get("rules", [])
    ]
    st.dataframe(pd.DataFrame(rules), hide_index=True, width="stretch", height=260)

    st.subheader("模拟登录")
    st.write("粘贴一组身份声明（JSON），或选择演示账号，查看其将获得的角色、部门和页面。不会真正登录。")
    demos = _demo_identities()
    choice = st.selectbox("演示账号", ["（自行粘贴）", *demos]) if demos else "（自行粘贴）"
    default = json.dumps(demos[choice], ensure_ascii=False, indent=2) if choice in demos else '{\n  "sub": "someone",\n  "groups": []\n}'
    text = st.text_area("身份声明（JSON）", value=default, height=180, key=f"claims-{choice}")
    try:
        claims = json.loads(text)
        if not isinstance(claims, dict):
            raise ValueError("not an object")
    except ValueError:
        st.error("声明不是合法的 JSON 对象，请检查括号和引号。")
        return
    identity = identity_from_claims(claims, access, departments=departments)
    if not identity.has_access:
        st.warning("此账号不匹配任何规则：登录后只会看到“暂无访问权限”页面。")
        return
    st.success("角色：" + "、".join(identity.grant_labels))
    pages = host.visible_pages(identity)
    st.markdown("**可见页面**：" + "、".join(p.title for p in pages))
    tiles = host.visible_tiles(identity)
    st.markdown(f"**驾驶舱指标卡**：{len(tiles)} 个")
    scopes = []
    for spec, _ in host.registry.ledgers.values():
        scope = identity.row_scope(spec)
        scopes.append({
            "台账": spec.title,
            "可读范围": "全部行" if scope.all_rows else ("、".join(sorted(scope.department_names)) or "无"),
            "可上传": "是" if identity.can(Perm.LEDGER_UPLOAD, spec) else "否",
            "可回滚": "是" if identity.can(Perm.LEDGER_ROLLBACK, spec) else "否",
        })
    st.dataframe(pd.DataFrame(scopes), hide_index=True, width="stretch")


OUTCOME_LABELS = {"ok": "成功", "denied": "拒绝", "rejected": "未通过", "error": "出错"}
HOW_LABELS = {
    "typed URL": "直接输入网址",
    "query parameter": "链接中的参数",
    "page run": "打开页面时复核",
    "raised by page": "页面拒绝",
    "raised by tile": "指标卡拒绝",
    "ledger read": "读取台账",
    "connector": "使用数据连接",
    "out-of-scope upload": "上传了其他单位的行",
    "out-of-scope seed": "载入了其他单位的行",
    "out-of-scope import": "导入了其他单位的行",
    "commit of another person's preview": "提交他人的预览",
    "upload scope changed": "上传权限已变化",
    "upload": "上传",
    "read": "读取",
}
REASON_LABELS = {
    "stale preview": "预览已过期（台账已有新版本）",
    "stale": "台账已有新版本",
    "id token expired": "登录已过期",
    "plugin": "插件未获准使用",
    "identity": "本人无权限",
    "template example rows": "表格含模板自带的示例行",
}


def _cjk(text: str) -> bool:
    return any("\u4e00" <= ch <= "\u9fff" for ch in text)


def audit_target(host, target: str) -> str:
    """An audit target as people read it: ``ledger:sensing_devices`` → 台账“感知前端管理台账”."""
    kind, _, key = target.partition(":")
    registry = host.registry
    if not target:
        return "—"
    if kind == "ledger":
        found = registry.ledgers.get(key)
        return f"台账“{found[0].title if found else key}”"
    if kind == "page":
        found = registry.pages.get(key)
        return f"页面“{found[0].title}”" if found else f"页面“/{key}”（不存在）"
    if kind == "department":
        return f"单位“{host.settings.departments.name(key) or key}”"
    if kind == "connector":
        found = registry.connectors.get(key)
        return f"数据连接“{found[0].title if found else key}”"
    if kind == "plugin":
        record = registry.plugins.get(key)
        return f"插件“{record.title if record and record.title else key}”"
    if kind == "tile":
        found = registry.tiles.get(key)
        return f"指标卡“{found[0].title if found else key}”"
    if target == "cockpit":
        return "领导驾驶舱"
    return target


def audit_summary(host, detail: str) -> str:
    """The event's details in one Chinese line (the raw JSON stays available to admins)."""
    try:
        data = json.loads(detail) if detail else {}
    except ValueError:
        return ""
    if not isinstance(data, dict):
        return ""
    parts: list[str] = []

    def number(key: str, label: str) -> None:
        if isinstance(data.get(key), int):
            parts.append(f"{label} {data[key]:,}")

    how = data.get("how")
    if how:
        parts.append(f"方式：{HOW_LABELS.get(how, how if _cjk(str(how)) else '其他')}")
    if data.get("exists") is False:
        parts.append("页面不存在")
    reason = data.get("reason")
    if reason:
        text = REASON_LABELS.get(str(reason), str(reason))
        if _cjk(text):
            parts.append(f"原因：{text}")
    refused = data.get("refused")
    if refused in REASON_LABELS:
        parts.append(f"原因：{REASON_LABELS[refused]}")
    if data.get("mode") in MODE_LABELS:  # a StrEnum: the stored text finds its label
        parts.append(f"更新方式：{MODE_LABELS[data['mode']]}")
    if data.get("file_name"):
        parts.append(f"文件：{data['file_name']}")
    number("rows", "行数")
    number("errors", "错误")
    number("warnings", "提醒")
    number("added", "新增")
    number("changed", "修改")
    number("removed", "删除")
    if isinstance(data.get("version"), int):
        parts.append(f"第{data['version']}版")
    if isinstance(data.get("to_version"), int):
        parts.append(f"恢复第{data['to_version']}版" + (f"为第{data['new_version']}版" if data.get("new_version") else ""))
    if data.get("grants"):
        parts.append("角色：" + "、".join(map(str, data["grants"])))
    if isinstance(data.get("pins"), list):
        parts.append(f"固定指标卡 {len(data['pins'])} 个")
    page = data.get("page")
    if page and page in host.registry.pages:
        parts.append(f"页面：{host.registry.pages[page][0].title}")
    tile = data.get("tile")
    if tile and tile in host.registry.tiles:
        parts.append(f"指标卡：{host.registry.tiles[tile][0].title}")
    plugin = data.get("plugin")
    if plugin and plugin in host.registry.plugins:
        record = host.registry.plugins[plugin]
        parts.append(f"插件：{record.title or plugin}")
    return "；".join(parts)


def audit_rows(host, events) -> pd.DataFrame:
    """The audit events as the page shows them: readable Chinese, no internal keys."""
    return pd.DataFrame(
        [
            {
                "编号": e.id,
                "时间（北京时间）": format_as_of(e.occurred_at, seconds=True),
                "操作人": e.actor_name or "—",
                "操作": ACTION_LABELS.get(e.action, e.action),
                "对象": audit_target(host, e.target),
                "结果": OUTCOME_LABELS.get(e.outcome, e.outcome),
                "说明": audit_summary(host, e.detail) or "—",
            }
            for e in events
        ],
        columns=["编号", "时间（北京时间）", "操作人", "操作", "对象", "结果", "说明"],
    )


def audit_page(ctx: PageContext) -> None:
    host = host_of(ctx)
    st.title("审计日志")
    c1, c2, c3, c4 = st.columns(4)
    actions = {"全部": None, **{v: k for k, v in ACTION_LABELS.items()}}
    action = actions[c1.selectbox("操作", list(actions))]
    actor = c2.text_input("操作人（姓名或标识）")
    text = c3.text_input("对象或详情包含")
    today = beijing_today()
    since = day_input("起始日期（年-月-日）", today - dt.timedelta(days=30), key="audit-since", latest=today, container=c4)
    # the day starts at 00:00 Beijing time, which is 16:00 UTC the day before
    start = dt.datetime.combine(since, dt.time(), tzinfo=BEIJING).astimezone(dt.UTC).replace(tzinfo=None)
    events = host.audit.search(
        action=action, actor=actor or None, text=text or None, since=start, limit=2000,
    )
    df = audit_rows(host, events)
    st.caption(f"共 {len(df):,} 条（最多显示 2000 条，按时间倒序）。审计日志只追加，不可修改。")
    # Rows three lines tall: st.dataframe wraps text only in rows taller than 4rem (Streamlit
    # 1.67's grid), so a long 说明 shows whole instead of ending at the column's edge.
    st.dataframe(
        df, hide_index=True, width="stretch", height=min(560, 40 + 72 * max(len(df), 1)), row_height=72,
        column_config={
            "编号": st.column_config.NumberColumn("编号", width=56, format="%d"),
            "时间（北京时间）": st.column_config.TextColumn(width=150),
            "操作人": st.column_config.TextColumn(width=80),
            "操作": st.column_config.TextColumn(width=100),
            "对象": st.column_config.TextColumn(width=200),
            "结果": st.column_config.TextColumn(width=64),
            "说明": st.column_config.TextColumn(width=330),
        },
    )
    with st.expander("原始记录（供平台管理员核查：账号标识、对象标识与详情原文）"):
        if events:
            by_id = {e.id: e for e in events}
            chosen = st.selectbox("记录编号", list(by_id), key="audit-raw-id")
            e = by_id[chosen]
            try:
                detail = json.loads(e.detail) if e.detail else {}
            except ValueError:
                detail = e.detail
            st.json({"编号": e.id, "时间（UTC，存储值）": str(e.occurred_at), "账号标识": e.actor,
                     "姓名": e.actor_name, "操作": e.action, "对象": e.target, "结果": e.outcome, "详情": detail})
        else:
            st.caption("没有符合条件的记录。")
    export = df.assign(账号标识=[e.actor for e in events], 对象标识=[e.target for e in events],
                       详情JSON=[e.detail for e in events])
    d1, d2 = st.columns(2)
    d1.download_button("导出 CSV", csv_bytes(export), "audit-log.csv", "text/csv")
    d2.download_button(
        "导出 Excel", xlsx_bytes({"审计日志": export}), "audit-log.xlsx",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    )


def system_page(ctx: PageContext) -> None:
    host = host_of(ctx)
    st.title("系统信息")
    kind = host.settings.store_kind
    url = host.engine.url.render_as_string(hide_password=True)
    c1, c2, c3 = st.columns(3)
    c1.metric("数据存储", "DuckDB 嵌入式文件" if kind == "duckdb" else "PostgreSQL" if kind == "postgresql" else kind)
    c2.metric("数据库结构版本", current_revision(host.engine) or "—")
    c3.metric("已启用插件", len(host.registry.enabled()))
    st.code(url, language=None)
    if kind == "duckdb":
        st.warning(
            "当前使用嵌入式 DuckDB 文件：只适合单个平台进程（演示、小型科室）。"
            "生产环境及多进程部署请设置 HUIZHI_DATABASE_URL 指向 PostgreSQL。"
        )
    else:
        st.info("当前使用 PostgreSQL，可多进程、多副本部署。")
    st.markdown(f"配置文件：`{host.settings.config_file or '未使用（环境变量与默认值）'}`；数据目录：`{host.settings.data_dir}`")
    tasks_section(ctx)

    st.subheader("部署检查")
    st.caption(
        "与命令 `huizhi doctor` 相同的检查：配置、角色映射、数据库连接与结构版本、统一身份认证的发现文档、插件。"
        "详情为英文，供运维人员排查。"
    )
    if st.button("运行部署检查", key="admin-doctor"):
        st.session_state["huizhi_doctor"] = _doctor_rows(host)
    rows = st.session_state.get("huizhi_doctor")
    if rows is not None:
        failed = sum(row["结果"] == STATUS_LABELS_DOCTOR[FAIL] for row in rows)
        if failed:
            st.error(f"发现 {failed} 项问题，请按“详情”处理；处理后重新运行检查。")
        else:
            st.success("全部检查通过。")
        st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")


def _doctor_rows(host) -> list[dict[str, str]]:
    """The doctor's findings for this portal process: its own settings, database engine and
    loaded plugins, and the secrets files Streamlit was started with."""
    from pathlib import Path

    secrets = [Path(p) for p in st.config.get_option("secrets.files") or []]
    findings = run_checks(secrets_files=secrets, host=host)
    return [
        {"检查项": CHECK_LABELS.get(f.check, f.check), "结果": STATUS_LABELS_DOCTOR[f.status], "详情": f.detail}
        for f in findings
    ]


def tasks_section(ctx: PageContext) -> None:
    """后台任务: what the task queue is doing and what failed, with each failure's reason (in
    English, as the log has it, beside a Chinese summary)."""
    from huizhi.tasks import FAILED, QUEUED, RETRYING, RUNNING

    host = host_of(ctx)
    tasks = host.tasks
    st.subheader("后台任务")
    workers = tasks.live_workers()
    recent = tasks.recent(200)
    day_ago = dt.datetime.now(dt.UTC).replace(tzinfo=None) - dt.timedelta(days=1)
    c1, c2, c3, c4 = st.columns(4)
    c1.metric("工作进程", "进程内" if workers is None else f"{workers} 个在线",
              help="嵌入式数据库：后台任务在平台进程内运行，无需单独的工作进程。" if workers is None else None)
    c2.metric("运行中 / 排队", f"{sum(r.status == RUNNING for r in recent)} / {sum(r.status == QUEUED for r in recent)}")
    c3.metric("等待重试", sum(r.status == RETRYING for r in recent))
    c4.metric("近24小时失败", sum(r.status == FAILED and r.created_at >= day_ago for r in recent))
    if workers == 0:
        st.error(
            "没有在线的后台工作进程：大文件校验、填报提醒、定时同步和驾驶舱快照导出都不会执行。"
            "请在服务器上启动 `huizhi worker`（见部署文档）。"
        )
    shown = [r for r in recent if r.status in (RUNNING, RETRYING, FAILED, QUEUED)][:50]
    if not shown:
        st.caption("最近没有运行中、排队或失败的后台任务。")
    else:
        st.dataframe(pd.DataFrame([
            {
                "编号": r.id,
                "任务": r.label or r.task,
                "状态": r.status_label,
                "尝试": f"{r.attempts}/{r.max_attempts}",
                "错误详情": r.error or "—",
                "说明": _task_summary(r),
                "提交时间（北京时间）": format_as_of(r.created_at),
                "执行者": r.worker or "—",
            }
            for r in shown
        ]), hide_index=True, width="stretch")
    jobs = tasks.periodic_jobs
    if jobs:
        st.caption("定时任务（cron，UTC）：" + "；".join(f"{j.label} `{j.cron}`" for j in jobs.values()))
        name = st.selectbox("立即运行一个定时任务", list(jobs), format_func=lambda n: jobs[n].label, key="hz-run-now")
        if st.button("立即运行", key="hz-run-now-go"):
            run_id = tasks.run_now(name)
            ctx.audit("task.run_now", f"task:{name}", run=run_id)
            st.success(f"已加入队列（编号 {run_id}）。")


def _task_summary(run) -> str:
    from huizhi.tasks import FAILED, QUEUED, RETRYING

    if run.status == FAILED:
        return f"已尝试 {run.attempts} 次仍失败，不再自动重试；未提交任何数据。请根据错误详情处理后重新发起。"
    if run.status == RETRYING:
        return f"第 {run.attempts} 次尝试失败，稍后自动重试（最多 {run.max_attempts} 次）。"
    if run.status == QUEUED:
        return "排队等待工作进程。"
    if run.error:  # running again after an interrupted attempt
        return f"上次尝试被中断（工作进程停止），正在第 {run.attempts} 次尝试。"
    return f"正在运行（第 {run.attempts} 次尝试）。"
