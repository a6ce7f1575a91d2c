"""Excel ledger files (台账): template, safe parsing, cell-by-cell validation, marked copies.

Public API (import from ``huizhi.excel``; heavy modules load on first use)::

    ingest(source, file_name, spec, limits=Limits(), *, sheet=None, on_progress=None) -> IngestResult
    build_template(spec) -> bytes                          # .xlsx template for a LedgerSpec
    build_marked_workbook(result) -> bytes                 # user's sheet, bad cells marked + 错误清单
    build_bad_rows_workbook(result) -> bytes               # only the rows with errors, noted
    export_csv(table, spec=None) -> bytes / export_xlsx(table, spec) -> bytes  # formula-safe exports
    neutralise(text) -> str                                # "=1+1" -> "'=1+1"
    insert_arrow_duckdb(con, table_name, table) / copy_arrow_postgres(conn, table_name, table)

Types: :class:`Limits`, :class:`IngestResult`, :class:`IngestStats`, :class:`ColumnMatch`,
:class:`Problem`, :class:`ProblemKind`, :class:`Severity`, :class:`FileRejected`.
Phases for ``on_progress(phase, fraction)``: ``sniff``, ``parse``, ``header``, ``convert``,
``validate`` (Chinese names in ``PHASE_LABELS``); ``LedgerService.upload`` then reports its own
``stage`` (暂存数据) and ``diff`` (比对变化) through the same callback.

A ledger changes only through the ledger service (:class:`huizhi.ledgers.LedgerService`), which
calls :func:`ingest` and then stages and diffs the rows in the database (one diff, in SQL:
:meth:`huizhi.ledger_store.LedgerStore.diff`). Typical page flow::

    upload = host.ledgers.upload(identity, ledger_id, uploaded_file, uploaded_file.name)
    res = upload.result
    if res.rejection: show(res.rejection.message, res.rejection.hint)
    show(res.summary()); st.dataframe(res.problems_display())
    st.download_button("下载标注后的工作簿", res.marked_workbook())
    if upload.preview:   # staged; upload.preview.diff has the counts and the changed cells
        host.ledgers.commit(identity, upload.preview, confirm_removal=True)

See docs/excel-ledgers.md for the pipeline, the limits and the measured performance.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "Limits": "huizhi.excel.limits",
    "Problem": "huizhi.excel.problems",
    "ProblemKind": "huizhi.excel.problems",
    "Severity": "huizhi.excel.problems",
    "FileRejected": "huizhi.excel.problems",
    "KIND_LABELS": "huizhi.excel.problems",
    "ingest": "huizhi.excel.pipeline",
    "IngestResult": "huizhi.excel.pipeline",
    "IngestStats": "huizhi.excel.pipeline",
    "ColumnMatch": "huizhi.excel.pipeline",
    "PHASE_LABELS": "huizhi.excel.pipeline",
    "build_template": "huizhi.excel.template",
    "build_marked_workbook": "huizhi.excel.marked",
    "build_bad_rows_workbook": "huizhi.excel.marked",
    "export_csv": "huizhi.excel.export",
    "export_xlsx": "huizhi.excel.export",
    "neutralise": "huizhi.excel.export",
    "insert_arrow_duckdb": "huizhi.excel.bulk",
    "copy_arrow_postgres": "huizhi.excel.bulk",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'huizhi.excel' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
