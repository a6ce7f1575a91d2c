"""The hostile and odd file corpus: exactly what is rejected, what is accepted, which cells are reported.

Every file is built by tests/excel_corpus.py. Each upload goes through the real pipeline
(sniffing, the sandboxed parser process, header matching, conversion, validation).
"""

from __future__ import annotations

import datetime as dt

import excel_corpus as C
import pytest

from huizhi.excel import Limits, ingest


def cells(result, severity: str | None = None) -> dict[str, str]:
    """{"C5": kind} for every problem with a cell (of the given severity)."""
    return {
        p.cell: p.kind for p in result.problems if p.cell and (severity is None or p.severity == severity)
    }


def rejected(data: bytes, name: str, **kwargs):
    res = ingest(data, name, C.SPEC, **kwargs)
    assert res.rejection is not None, [p.text() for p in res.problems]
    assert not res.ok and res.table is None
    assert len(res.problems) == 1 and res.problems[0].kind == "rejected"
    assert res.problems[0].message == res.rejection.message and res.problems[0].hint
    return res.rejection


# --------------------------------------------------------------------------- rejected


@pytest.mark.parametrize(
    ("build", "name", "kind", "says"),
    [
        (lambda: b"", "台账.xlsx", "empty", "空"),
        (C.encrypted_ole, "台账.xlsx", "encrypted", "密码"),
        (C.legacy_xls, "台账.xls", "legacy_xls", ".xls"),
        (C.xlsm_with_macro, "台账.xlsm", "macro", "宏"),
        (C.xlsm_with_macro, "台账.xlsx", "macro", "宏"),  # renamed: the content decides
        (lambda: C.PNG, "台账.xlsx", "not_spreadsheet", "PNG"),
        (lambda: "这只是一段文字\n第二行\n".encode(), "台账.xlsx", "wrong_extension", "纯文本"),
        (lambda: "这只是一段文字\n".encode(), "台账.txt", "unsupported", ".txt"),
        (lambda: b"<html><body><table><tr><td>1</td></tr></table></body></html>", "导出.xls", "html", "HTML"),
        (C.zip_bomb, "台账.xlsx", "zip_bomb", "压缩比"),
        (lambda: b"PK\x03\x04" + b"\x00" * 100, "台账.xlsx", "corrupt", "损坏"),
    ],
)
def test_rejected_before_parsing(build, name, kind, says):
    rej = rejected(build(), name)
    assert rej.kind == kind
    assert says in rej.message
    assert "。" in rej.hint or "，" in rej.hint  # a sentence telling what to do


def test_file_over_size_limit():
    data = C.typed_xlsx([C.good_row(1)])
    rej = rejected(data, "a.xlsx", limits=Limits(max_file_bytes=len(data) - 1))
    assert rej.kind == "too_large" and "上限" in rej.message


def test_decompressed_total_over_limit():
    data = C.typed_xlsx([C.good_row(i) for i in range(1, 50)])
    rej = rejected(data, "a.xlsx", limits=Limits(max_uncompressed_bytes=10_000))
    assert rej.kind == "too_large_uncompressed"


def test_zip_member_lying_about_its_size_is_caught_before_calamine():
    # declared 4 kB, inflates to 8 MB: the parser process streams every member and refuses it
    rej = rejected(C.lying_zip_bomb(), "a.xlsx")
    assert rej.kind == "corrupt" and "校验" in rej.message


def test_billion_laughs_in_a_sheet_is_refused():
    rej = rejected(C.billion_laughs_sheet(), "a.xlsx")
    assert rej.kind == "unsafe_xml" and "DTD" in rej.message


def test_billion_laughs_in_workbook_xml_is_refused_by_defusedxml():
    rej = rejected(C.billion_laughs_workbook(), "a.xlsx")
    assert rej.kind == "unsafe_xml"


def test_value_at_xfd1048576_rejected_by_prescan_with_the_cell_named():
    rej = rejected(C.xfd_value_cell(), "a.xlsx")
    assert rej.kind == "too_many_columns"
    assert "XFD1048576" in rej.message and "16384" in rej.message


def test_value_at_xfd1048576_behind_a_lying_dimension_kills_only_the_worker():
    # The sheet claims A1:B2, so only python-calamine finds the far cell: it aborts its process
    # (a Rust abort, not an exception). The worker dies; we get a clear message and live on.
    rej = rejected(C.xfd_value_cell_lying_dimension(), "a.xlsx", limits=Limits(worker_memory_mb=1024))
    assert rej.kind == "parser_memory"
    assert "XFD1048576" in rej.message and "Ctrl+End" in rej.hint
    assert "memory allocation" in rej.detail  # the Rust abort message, kept for the log
    ok = ingest(C.typed_xlsx([C.good_row(1)]), "a.xlsx", C.SPEC)  # and this process still works
    assert ok.ok


def test_too_many_rows_and_columns_limits():
    data = C.typed_xlsx([C.good_row(i) for i in range(1, 30)])
    assert rejected(data, "a.xlsx", limits=Limits(max_rows=10)).kind == "too_many_rows"
    assert rejected(data, "a.xlsx", limits=Limits(max_columns=5)).kind == "too_many_columns"
    assert rejected(data, "a.xlsx", limits=Limits(max_cells=100)).kind == "too_many_cells"


def test_no_header_found():
    data = C.typed_xlsx([["x", "y"]], headers=["甲", "乙"])
    rej = rejected(data, "a.xlsx")
    assert rej.kind == "no_header" and "「编号」" in rej.hint


def test_csv_in_unknown_encoding_rejected():
    rej = rejected(b"\x81\x30\x81" * 10 + b"\xff\xfe\xfd,\x80\x80\n", "a.csv")
    assert rej.kind in ("encoding", "not_spreadsheet")


# --------------------------------------------------------------------------- accepted


def test_one_formatted_cell_at_the_last_row_is_accepted_quickly():
    # openpyxl's default loader spends minutes on this; the formatted empty cell is not data
    data = C.typed_xlsx([C.good_row(1), C.good_row(2)], last_row_format=True)
    res = ingest(data, "a.xlsx", C.SPEC)
    assert res.ok, [p.text() for p in res.problems]
    assert res.stats.rows == 2 and res.stats.timings["total"] < 30


def test_title_rows_merged_cells_and_hidden_first_sheet():
    data = C.typed_xlsx(
        [C.good_row(1), C.good_row(2)],
        title="2023 年 测试台账（单位：万元）",
        blank_rows_before_header=1,
        hidden_first=True,
        extra_sheets=("填写说明",),
    )
    res = ingest(data, "a.xlsx", C.SPEC)
    assert res.ok, [p.text() for p in res.problems]
    assert res.sheet == "Sheet1"  # the hidden first sheet is not read
    assert res.header_row == 3
    assert res.row_numbers.to_pylist() == [4, 5]
    assert res.table.column("code").to_pylist() == ["JD0001", "JD0002"]


def test_header_with_full_width_spaces_markers_units_and_aliases():
    headers = [
        " 编号 ",
        "项目名称",
        "数　量*",
        "金额（元）",
        "开始\n日期",
        "结束日期",
        "是否完成（必填）",
        "街道",
        "预算",
        "备注",
    ]
    res = ingest(C.typed_xlsx([C.good_row(1)], headers=headers), "a.xlsx", C.SPEC)
    assert res.ok, [p.text() for p in res.problems]
    found = {m.name: (m.header, m.letter) for m in res.columns}
    assert found["name"] == ("项目名称", "B")  # alias
    assert found["qty"] == ("数　量*", "C")
    assert found["amount"] == ("金额（元）", "D")


def test_missing_unknown_and_duplicate_columns_reported_by_name():
    headers = ["编号", "名称", "数量", "数量", "开始日期", "是否完成", "街道", "负责人"]
    rows = [["JD0001", "a", 1, 2, dt.date(2023, 1, 1), "是", "兴丰街道", "张三"]]
    res = ingest(C.typed_xlsx(rows, headers=headers), "a.xlsx", C.SPEC)
    by_kind = {}
    for p in res.problems:
        by_kind.setdefault(p.kind, []).append(p)
    assert [p.header for p in by_kind["unknown_column"]] == ["负责人"]
    assert by_kind["unknown_column"][0].severity == "warning" and by_kind["unknown_column"][0].cell == "H1"
    assert [(p.header, p.cell, p.severity) for p in by_kind["duplicate_column"]] == [("数量", "D1", "error")]
    missing = {p.column: p.severity for p in by_kind["missing_column"]}
    assert missing == {"amount": "warning", "end": "warning", "budget": "warning", "note": "warning"}
    assert not res.ok  # the duplicate column is an error


def test_missing_required_column_is_an_error():
    headers = [h for h in C.HEADERS if h != "街道"]
    row = [v for h, v in zip(C.HEADERS, C.good_row(1), strict=True) if h != "街道"]
    res = ingest(C.typed_xlsx([row], headers=headers), "a.xlsx", C.SPEC)
    (p,) = [p for p in res.problems if p.kind == "missing_column"]
    assert p.severity == "error" and p.column == "street" and "街道" in p.message
    assert not any(p.kind == "required" for p in res.problems)  # not once per row as well


def test_trailing_total_row_signature_line_and_empty_rows():
    rows = [
        C.good_row(1),
        [None] * 10,
        C.good_row(2),
        [None] * 10,
        ["合计", None, 3, 4.5] + [None] * 6,
        ["填表人：张三", None, "审核人：李四"],
    ]
    res = ingest(C.typed_xlsx(rows), "a.xlsx", C.SPEC)
    assert res.ok, [p.text() for p in res.problems]
    assert res.row_numbers.to_pylist() == [2, 4]
    assert res.stats.empty_rows_skipped >= 2 and res.stats.trailing_rows_skipped == 2
    warnings = [(p.kind, p.row) for p in res.warnings]
    assert ("total_row", 6) in warnings and ("total_row", 7) in warnings


def test_total_row_in_the_middle_is_data_and_fails():
    rows = [C.good_row(1), ["合计", None, 3] + [None] * 7, C.good_row(2)]
    res = ingest(C.typed_xlsx(rows), "a.xlsx", C.SPEC)
    assert cells(res, "error").get("A3") == "pattern"


def test_dates_numbers_and_booleans_in_the_forms_people_type():
    base = C.good_row(1)

    def row(i, start, qty, done, amount):
        r = list(C.good_row(i))
        r[2], r[3], r[4], r[5], r[6] = qty, amount, start, None, done
        return r

    rows = [
        row(1, dt.date(2023, 5, 1), 7, "是", 1.5),
        row(2, "2023/5/1", "7", "否", "1,234.5"),
        row(3, "2023年5月1日", " ７ ", "TRUE", "１２"),
        row(4, "2023-05-01", 7.0, "N", 0),
        row(5, 45047, "7.0", True, "3"),
        row(6, "20230501", 7, "y", 2),
        row(7, "2023.5.1 00:00:00", 7, 1, 2),
    ]
    del base
    res = ingest(C.typed_xlsx(rows), "a.xlsx", C.SPEC)
    assert res.ok, [p.text() for p in res.problems]
    t = res.table
    assert t.column("start").to_pylist() == [dt.date(2023, 5, 1)] * 7
    assert t.column("qty").to_pylist() == [7] * 7
    assert t.column("done").to_pylist() == [True, False, True, False, True, True, True]
    assert t.column("amount").to_pylist() == [1.5, 1234.5, 12.0, 0.0, 3.0, 2.0, 2.0]
    assert str(t.schema.field("qty").type) == "int64" and str(t.schema.field("start").type) == "date32[day]"


def test_every_bad_cell_reported_with_row_letter_value_message_and_hint():
    rows = [
        ["JD0001", "a", 5, 10.0, dt.date(2023, 5, 1), None, "是", "兴丰街道", None, None],
        ["JD０002", "b", "x", -1, "2023-02-30", None, "也许", "兴丰", None, None],  # 6 bad cells
        ["JD0001", None, 1001, 1, "2023/13/1", "2022-01-01", "否", "清源街道", None, None],
        ["JD0004", "d", 1.5, "12%", "明天", None, "是", "清源街道", 5, "=1+1"],
    ]
    res = ingest(C.typed_xlsx(rows), "a.xlsx", C.SPEC)
    assert not res.ok
    assert cells(res, "error") == {
        "A2": "duplicate",
        "A3": "pattern",
        "C3": "type",
        "D3": "min",
        "E3": "type",
        "G3": "type",
        "H3": "choice",
        "A4": "duplicate",
        "B4": "required",
        "C4": "max",
        "E4": "type",
        "C5": "type",
        "D5": "type",
        "E5": "type",
    }
    by_cell = {p.cell: p for p in res.problems if p.cell}
    p = by_cell["E3"]
    assert (p.row, p.column_letter, p.header, p.value, p.sheet) == (
        3,
        "E",
        "开始日期",
        "2023-02-30",
        "Sheet1",
    )
    assert p.message == "日期不存在" and "2 月没有 30 日" in p.hint
    assert by_cell["A2"].message.endswith("与第 4 行相同") and by_cell["A4"].message.endswith("与第 2 行相同")
    assert by_cell["C5"].message == "应为整数，但填写了小数" and by_cell["C5"].value == "1.5"
    assert by_cell["D5"].message.startswith("不是数字（带了 % 号）")
    assert by_cell["H3"].hint.startswith("请从下拉列表中选择：兴丰街道")
    assert "J5" not in by_cell  # formula-like text is stored as text, not an error
    assert res.table.column("note").to_pylist()[3] == "=1+1"
    assert res.error_count == 14
    summary = {(s["column"], s["kind"]): s["count"] for s in res.summary()}
    assert summary[("code", "duplicate")] == 2 and summary[("start", "type")] == 3


def test_row_rules_hard_and_soft():
    rows = [
        ["JD0001", "a", 5, 50.0, dt.date(2023, 5, 1), dt.date(2023, 4, 1), "是", "兴丰街道", 10.0, None],
        ["JD0002", "b", 5, 5.0, dt.date(2023, 5, 1), dt.date(2023, 6, 1), "是", "兴丰街道", 10.0, None],
    ]
    res = ingest(C.typed_xlsx(rows), "a.xlsx", C.SPEC)
    assert cells(res, "error") == {"E2": "row_rule", "F2": "row_rule"}
    assert cells(res, "warning") == {"D2": "row_rule", "I2": "row_rule"}
    rule = next(p for p in res.problems if p.cell == "E2")
    assert rule.rule == "end_after_start" and rule.message == "结束日期早于开始日期"
    # only warnings left: the upload may be committed
    rows[0][5] = dt.date(2023, 6, 1)
    res = ingest(C.typed_xlsx(rows), "a.xlsx", C.SPEC)
    assert res.ok and res.warning_count == 2 and res.error_count == 0


def test_csv_gb18030_utf8_bom_and_utf8():
    rows = [C.HEADERS] + [C.csv_row(i) for i in range(1, 4)]
    for encoding, bom, expect in (
        ("gb18030", False, "gb18030"),
        ("utf-8", True, "utf-8-sig"),
        ("utf-8", False, "utf-8"),
    ):
        res = ingest(C.csv_bytes(rows, encoding, bom=bom), "台账.csv", C.SPEC)
        assert res.ok, (encoding, [p.text() for p in res.problems])
        assert res.stats.encoding == expect
        assert res.table.column("street").to_pylist() == ["清源街道", "林校路街道", "兴丰街道"]
        assert res.table.column("start").to_pylist()[0] == dt.date(2023, 1, 2)


def test_csv_gbk_with_title_line_and_semicolons():
    rows = [["测试台账 2023"]] + [C.HEADERS] + [C.csv_row(1)]
    res = ingest(C.csv_bytes(rows, "gbk", sep=";"), "台账.csv", C.SPEC)
    assert res.ok, [p.text() for p in res.problems]
    assert res.header_row == 2 and res.stats.delimiter == ";"


def test_csv_problems_point_at_rows_and_letters():
    rows = [C.HEADERS, C.csv_row(1), C.csv_row(2)]
    rows[2][2] = "七"
    res = ingest(C.csv_bytes(rows, "utf-8"), "a.csv", C.SPEC)
    assert cells(res) == {"C3": "type"}


def test_wps_libreoffice_style_xml_quirks():
    rows = [
        C.HEADERS,
        ["JD0001", "a", 5, 1.5, ("date", 45047), None, True, "兴丰街道", None, None],
        ["JD0002", "b", 6, None, ("date", 45048), None, False, "清源街道", None, "=SUM(A1)"],
    ]
    variants = {
        "prefixed namespace": C.sheet_xml(C.header_and_rows_xml(rows), prefix="x", dimension="A1:J3"),
        "no dimension": C.sheet_xml(C.header_and_rows_xml(rows)),
        "no cell references": C.sheet_xml(C.header_and_rows_xml(rows, addressed=False)),
        "stale small dimension": C.sheet_xml(C.header_and_rows_xml(rows), dimension="A1:B2"),
    }
    for label, sheet in variants.items():
        res = ingest(
            C.raw_xlsx(sheet, extra_members={"docProps/custom.xml": "<Properties/>"}), "a.xlsx", C.SPEC
        )
        assert res.ok, (label, [p.text() for p in res.problems])
        assert res.table.column("start").to_pylist() == [dt.date(2023, 5, 1), dt.date(2023, 5, 2)], label
        assert res.table.column("done").to_pylist() == [True, False], label
        assert res.table.column("note").to_pylist() == [None, "=SUM(A1)"], label


def test_sheet_choice_by_name_and_unknown_sheet():
    data = C.typed_xlsx([C.good_row(1)], sheet="数据", extra_sheets=("测试台账",))
    # a sheet named like the ledger title is preferred; here it holds no header
    res = ingest(data, "a.xlsx", C.SPEC)
    assert res.sheet == "测试台账" and res.rejection.kind == "no_header"
    res = ingest(data, "a.xlsx", C.SPEC, sheet="数据")
    assert res.ok and res.sheets == ["数据", "测试台账"]
    res = ingest(data, "a.xlsx", C.SPEC, sheet="不存在")
    assert res.rejection.kind == "no_sheet" and "数据" in res.rejection.hint


def test_header_only_file_has_no_data_error():
    res = ingest(C.typed_xlsx([]), "a.xlsx", C.SPEC)
    assert not res.ok and [p.kind for p in res.errors] == ["no_data"]


def test_progress_reports_every_phase_in_order():
    seen = []
    ingest(C.typed_xlsx([C.good_row(1)]), "a.xlsx", C.SPEC, on_progress=lambda ph, f: seen.append((ph, f)))
    phases = [ph for ph, _ in seen]
    order = ["sniff", "parse", "header", "convert", "validate"]
    assert [p for i, p in enumerate(phases) if i == 0 or phases[i - 1] != p] == order
    assert all(0.0 <= f <= 1.0 for _, f in seen)
    assert seen[-1] == ("validate", 1.0)


def test_result_metadata_for_versions_and_audit():
    data = C.typed_xlsx([C.good_row(1)])
    res = ingest(data, "上报.xlsx", C.SPEC)
    import hashlib

    assert res.file_sha256 == hashlib.sha256(data).hexdigest() and res.file_size == len(data)
    d = res.to_dict()
    assert d["rows"] == 1 and d["errors"] == 0 and d["rejection"] is None and d["file_name"] == "上报.xlsx"
    assert set(res.stats.timings) >= {"sniff", "parse", "header", "convert", "validate", "total"}
    frame = res.frame()
    assert str(frame["qty"].dtype) == "Int64" and str(frame["start"].dtype) == "datetime64[ms]"


def test_path_and_file_object_sources(tmp_path):
    data = C.typed_xlsx([C.good_row(1)])
    path = tmp_path / "上报.xlsx"
    path.write_bytes(data)
    import io

    assert ingest(str(path), path.name, C.SPEC).ok
    assert ingest(io.BytesIO(data), path.name, C.SPEC).ok


def test_csv_blank_lines_keep_row_numbers_and_headerless_data_is_reported():
    rows = [["标题"], [], C.HEADERS, C.csv_row(1), [], C.csv_row(2), [""] * 11 + ["没有列名的数据"]]
    res = ingest(C.csv_bytes(rows), "a.csv", C.SPEC)
    assert res.ok, [p.text() for p in res.problems]
    assert res.header_row == 3 and res.row_numbers.to_pylist() == [4, 6]
    (w,) = res.warnings
    assert (w.kind, w.cell) == ("unknown_column", "L3") and "没有列名" in w.message
