"""首页: what the signed-in person can use, and the state of their ledgers."""

from __future__ import annotations

import streamlit as st

from huizhi.context import PageContext
from huizhi.fmt import format_as_of
from huizhi.portal import host_of
from huizhi.specs import Perm


def render(ctx: PageContext) -> None:
    host, identity = host_of(ctx), ctx.identity
    st.title(f"您好，{identity.name}")
    st.caption("您的角色：" + "、".join(identity.grant_labels))

    by_section = {
        section: [p for p in pages if p.url_path != "home"]
        for section, pages in host.page_sections(identity).items()
    }
    by_section = {section: pages for section, pages in by_section.items() if pages}

    st.subheader("您可以使用")
    cols = st.columns(min(3, max(1, len(by_section))))
    for i, (section, items) in enumerate(by_section.items()):
        with cols[i % len(cols)], st.container(border=True):
            st.markdown(f"**{section}**")
            for page in items:
                ctx.link(page.url_path, label=page.title, icon=page.icon)

    # identity.can is the one answer to "may read / upload / roll back": the same the ledger
    # centre asks, so this table and the ledger page cannot disagree.
    ledgers = [spec for spec, _ in host.registry.ledgers.values() if identity.can(Perm.LEDGER_READ, spec)]
    if ledgers:
        st.subheader("台账状态")
        heads = host.store.heads()
        rows = []
        for spec in ledgers:
            head = heads.get(spec.id)
            rows.append({
                "台账": spec.title,
                "牵头部门": host.settings.departments.name(spec.department),
                "当前版本": f"第{head.number}版" if head else "尚无数据",
                "最近更新（北京时间）": format_as_of(head.updated_at) if head else "—",
                "您可见的行": f"{ctx.ledger(spec.id).count() if head else 0:,}",
                "可上传": "是" if identity.can(Perm.LEDGER_UPLOAD, spec) else "否",
                "可回滚": "是" if identity.can(Perm.LEDGER_ROLLBACK, spec) else "否",
            })
        st.dataframe(rows, hide_index=True, width="stretch")
