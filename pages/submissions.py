"""报送情况: which departments have submitted each periodic ledger this period."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from huizhi.context import PageContext
from huizhi.fmt import format_as_of
from huizhi.portal import host_of
from huizhi.specs import TileValue, TopItems


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
            st.caption(
                f"本期：{s.period.label}（{s.period.start:%m月%d日}—{s.period.end:%m月%d日}）。"
                + (f"最近一次上传：{format_as_of(s.last_upload)}（北京时间）。" if s.last_upload else "尚无上传记录。")
            )
            if s.stale:
                st.warning("本期和上一期都没有上传：台账可能已经过时，请督促牵头部门更新。")
            rows = [
                {"单位": name, "本期状态": "已报送" if name in s.submitted else "未报送",
                 "报送时间（北京时间）": format_as_of(s.submitted[name]) if name in s.submitted else "—"}
                for name in s.expected
            ]
            st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")


def tile(ctx) -> TileValue:
    """Cockpit tile: share of (ledger, department) submissions made this period."""
    items = host_of(ctx).submissions.status(ctx.today)
    owed = sum(len(s.expected) for s in items)
    if not owed:
        return TileValue(None, note="没有声明填报周期的台账")
    done = owed - sum(len(s.missing) for s in items)
    late = tuple((s.title, name, s.period.label) for s in items for name in s.missing)
    ends = min(s.period.end for s in items)
    return TileValue(
        100.0 * done / owed,
        detail=TopItems(("台账", "未报送单位", "期间"), late[:10]),
        note=f"本期应报 {owed} 项，已报 {done} 项；最早截止 {ends:%m月%d日}",
    )
