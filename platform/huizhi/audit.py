"""The audit trail: append-only records of who did what. The application never updates or deletes."""

from __future__ import annotations

import datetime as dt
import json
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from huizhi.models import AuditEvent

if TYPE_CHECKING:
    from huizhi.access import Identity

log = logging.getLogger(__name__)

ACTION_LABELS = {
    "signin": "登录",
    "signout": "退出登录",
    "signin.no_role": "登录（无角色）",
    "access.denied": "拒绝访问",
    "page.view": "查看页面",
    "ledger.read": "读取台账",
    "ledger.export": "导出台账",
    "ledger.upload": "上传台账",
    "ledger.commit": "提交台账版本",
    "ledger.rollback": "回滚台账",
    "ledger.seed": "载入演示数据",
    "plugin.enable": "启用插件",
    "plugin.disable": "停用插件",
    "plugin.install": "安装声明式插件",
    "cockpit.pins": "固定驾驶舱指标卡",
    "cockpit.export": "导出驾驶舱",
    "submission.reminder": "填报提醒",
    "task.run_now": "立即运行定时任务",
}


@dataclass(frozen=True)
class AuditLog:
    engine: Engine

    def record(
        self,
        identity: Identity | None,
        action: str,
        target: str = "",
        outcome: str = "ok",
        **detail: Any,
    ) -> int | None:
        """Append one event; returns its id. A failure to audit is logged, never raised into a page."""
        try:
            with Session(self.engine) as session:
                event = AuditEvent(
                    actor=identity.subject if identity else "anonymous",
                    actor_name=identity.name if identity else "",
                    action=action,
                    target=target[:300],
                    outcome=outcome,
                    detail=json.dumps(detail, ensure_ascii=False, default=str),
                )
                session.add(event)
                session.flush()  # the id comes back with the INSERT
                event_id = event.id
                session.commit()  # reading event.id after this would SELECT the row again
                return event_id
        except Exception:
            log.exception("could not write audit event %s %s", action, target)
            return None

    def search(
        self,
        *,
        action: str | None = None,
        actor: str | None = None,
        text: str | None = None,
        since: dt.datetime | None = None,
        limit: int = 500,
    ) -> list[AuditEvent]:
        stmt = select(AuditEvent).order_by(AuditEvent.id.desc()).limit(limit)
        if action:
            stmt = stmt.where(AuditEvent.action == action)
        if actor:
            stmt = stmt.where(AuditEvent.actor_name.contains(actor) | AuditEvent.actor.contains(actor))
        if text:
            stmt = stmt.where(AuditEvent.target.contains(text) | AuditEvent.detail.contains(text))
        if since:
            stmt = stmt.where(AuditEvent.occurred_at >= since)
        with Session(self.engine) as session:
            return list(session.scalars(stmt))
