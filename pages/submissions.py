"""报送情况: which departments have submitted each periodic ledger this period."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from huizhi.context import PageContext
from huizhi.fmt import format_as_of
from huizhi.portal import host_of
from huizhi.specs import Target, TileValue, TopItems


def render(ctx: PageContext) -> None:
    st.title("台账报送情况")
    items = host_of(ctx).submissions.status(ctx.today)
    if not items:
        st.info("目前没有声明填报周期（每月、每季度）的台账。")
        return
    owed = sum(len(s.expected) for s in items)
    missing = sum(len(s.missing) for s in items)
    c1, c2, c3 = st.columns(3)
    c1.metric("应报（台账×单位）", f"{owed:,}")
    c2.metric("未报", f"{missing:,}")
    c3.metric("长期未更新的台账", sum(s.stale for s in items))
    for s in items:
        with st.container(border=True):
            st.subheader(f"{s.title}（{s.owner}）")
            days_left = (s.deadline - ctx.today).days
            st.caption(
                f"本期：{s.period.label}（{s.period.start:%m月%d日}—{s.period.end:%m月%d日}），"
                f"截止 {s.deadline:%m月%d日}" + (f"，还有 {days_left} 天。" if days_left > 0 else "（今天）。")
                + (f"最近一次上传：{format_as_of(s.last_upload)}（北京时间）。" if s.last_upload else "尚无上传记录。")
                + (f"台账最近更新：{format_as_of(s.last_commit)}（北京时间）。" if s.last_commit else "")
            )
            if s.outdated:  # judged on the real commit time, not on the dates inside the rows
                st.warning("本期和上一期都没有更新：台账可能已经过时，请督促牵头部门更新。")
            elif s.stale:
                st.info("本期和上一期都没有单位上传；现有数据为系统导入或回滚的版本，不计为报送。")
            rows = [
                {"单位": name, "本期状态": "已报送" if name in s.submitted else "未报送",
                 "报送时间（北京时间）": format_as_of(s.submitted[name]) if name in s.submitted else "—"}
                for name in s.expected
            ]
            st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")


def tile(ctx) -> TileValue:
    """Cockpit tile: share of (ledger, department) submissions made this period, judged against
    this period's deadline (its last day): before it, a low share is 未到截止 with the days left,
    not a failure. As of: the latest commit of those ledgers (the real commit time)."""
    items = host_of(ctx).submissions.status(ctx.today)
    owed = sum(len(s.expected) for s in items)
    if not owed:
        return TileValue(None, note="没有声明填报周期的台账")
    done = owed - sum(len(s.missing) for s in items)
    late = tuple((s.title, name, s.period.label) for s in items for name in s.missing)
    first = min(items, key=lambda s: s.deadline)
    commits = [s.last_commit for s in items if s.last_commit is not None]
    as_of = max(commits) if commits else None
    target = Target(
        100.0, first.deadline, start=first.period.start, warn_days=min(5, (first.deadline - first.period.start).days),
        source=f"{first.period.label}各单位应在 {first.deadline:%m月%d日} 前报送",
    )
    days_left = (first.deadline - ctx.today).days
    when = f"截止 {first.deadline:%m月%d日}" + (f"，还有 {days_left} 天" if days_left > 0 else "（今天）")
    return TileValue(
        100.0 * done / owed,
        as_of=as_of,
        detail=TopItems(("台账", "未报送单位", "期间"), late[:10]),
        note=f"本期（{first.period.label}）应报 {owed} 项，已报 {done} 项；{when}",
        target=target,
    )
