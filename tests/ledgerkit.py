"""Putting rows into a test ledger the way the product does: through the ledger service."""

from __future__ import annotations

from typing import Any

from huizhi.access import Grant, Identity, Role


def admin(dept: str = "jxj") -> Identity:
    return Identity(subject=f"admin-{dept}", name=f"{dept}台账管理员", grants=frozenset({Grant(Role.LEDGER_ADMIN, dept)}))


def commit_rows(host, ledger_id: str, rows: Any, *, identity: Identity | None = None, kind: str = "upload",
                file_sha256: str | None = None):
    """Preview and commit ``rows`` (a DataFrame or Arrow table) as ``identity`` (default: the host's
    own system identity); returns the new version, or None when nothing changed."""
    who = identity or host.system_identity("test")
    return host.ledgers.import_rows(who, ledger_id, rows, kind=kind, file_sha256=file_sha256)


def new_device(i: int) -> dict[str, Any]:
    """A valid new row of the sensing ledger, by header (as someone types it into the template)."""
    import datetime as dt

    return {
        "城市码": f"110115-SP-{99_000_000 + i:08d}",
        "设备名称": f"黄村西大街路口视频监控{i}号",
        "设备类型": "视频监控",
        "权属单位": "区公安分局",
        "所属镇街": "黄村镇",
        "安装地点": "黄村西大街路口",
        "经度": "116.3120",
        "纬度": 39.7215,
        "安装日期": "2023年5月1日",
        "是否联网": "是",
        "运行状态": "在用",
        "末次巡检日期": dt.date(2026, 10, 8),
        "巡检周期（天）": "90",
        "所属建设项目": "雪亮工程",
    }


def fill_template(template: bytes, rows: list[dict[str, Any]]) -> bytes:
    """The downloaded template with ``rows`` typed in from row 2 (over the example rows, as the
    template's 填写说明 says one may), saved the way Excel saves it."""
    import io

    import openpyxl

    wb = openpyxl.load_workbook(io.BytesIO(template))
    ws = wb.worksheets[0]
    headers = [c.value for c in ws[1]]
    ws.delete_rows(2, ws.max_row)
    for r, row in enumerate(rows, start=2):
        for c, header in enumerate(headers, start=1):
            ws.cell(r, c, row.get(header))
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()
