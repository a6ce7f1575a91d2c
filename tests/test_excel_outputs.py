"""What leaves the engine: the template, marked workbooks, exports and bulk writes.

The diff is the store's (SQL): tests/test_ledger_diff.py."""

from __future__ import annotations

import datetime as dt
import io
import os
import uuid
import zipfile

import excel_corpus as C
import openpyxl
import pyarrow as pa
import pytest

from huizhi.excel import (
    build_bad_rows_workbook,
    build_marked_workbook,
    build_template,
    export_csv,
    export_xlsx,
    ingest,
    insert_arrow_duckdb,
    neutralise,
)
from huizhi.specs import ColumnSpec, LedgerSpec

BAD_ROWS = [
    C.good_row(1),
    ["JD０002", "b", "x", 1.0, "2023-02-30", None, "也许", "兴丰街道", None, '=HYPERLINK("http://x")'],
    C.good_row(3),
    ["JD0004", None, 5, 1.0, dt.date(2023, 1, 1), None, "是", "火星", None, "+1"],
]


def _load(data: bytes):
    return openpyxl.load_workbook(io.BytesIO(data))


def _no_formulas(data: bytes) -> None:
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        for name in zf.namelist():
            if name.startswith("xl/worksheets/"):
                assert b"<f>" not in zf.read(name) and b"<f " not in zf.read(name), name


# --------------------------------------------------------------------------- template


def test_template_round_trip_passes_and_explains_itself():
    data = build_template(C.SPEC)
    res = ingest(data, "模板.xlsx", C.SPEC)
    assert res.ok, [p.text() for p in res.problems]
    assert res.stats.rows == 2 and res.header_row == 1
    assert res.table.column("code").to_pylist() == ["JD0001", "JD0002"]
    wb = _load(data)
    assert wb.sheetnames == ["测试台账", "填写说明"]
    ws = wb["测试台账"]
    assert [c.value for c in ws[1]] == C.HEADERS
    assert ws.freeze_panes == "A2"
    note = ws["C1"].comment.text
    assert "类型：整数" in note and "必填" in note and "范围：0 ～ 1000" in note
    assert "格式：JD 加 4 位数字" in ws["A1"].comment.text and "不能重复" in ws["A1"].comment.text
    validations = {str(dv.sqref): (dv.type, dv.formula1) for dv in ws.data_validations.dataValidation}
    assert validations["H2:H1048576"] == ("list", '"兴丰街道,清源街道,林校路街道"')
    assert validations["G2:G1048576"] == ("list", '"是,否"')
    assert validations["C2:C1048576"][0] == "whole"
    assert ws["A2"].number_format == "@"  # ids and phone numbers stay text
    guide = [c.value for row in wb["填写说明"].iter_rows() for c in row if c.value]
    assert "结束日期早于开始日期（涉及：开始日期、结束日期；必须满足）" in " ".join(map(str, guide))
    assert any(v == "编号" for v in guide)


def test_template_long_choice_lists_live_on_a_hidden_sheet():
    spec = LedgerSpec(
        id="long",
        title="长列表",
        department="jxj",
        key=("unit",),
        columns=(ColumnSpec("unit", "单位", choices=tuple(f"第{i}个非常长的单位名称" for i in range(60))),),
    )
    data = build_template(spec)
    wb = _load(data)
    assert wb["_选项"].sheet_state == "hidden" and wb["_选项"]["A60"].value == "第59个非常长的单位名称"
    (dv,) = wb["长列表"].data_validations.dataValidation
    assert dv.formula1 == "'_选项'!$A$1:$A$60"
    res = ingest(data, "t.xlsx", spec)
    assert res.ok and res.table.column("unit").to_pylist() == [
        "第0个非常长的单位名称",
        "第1个非常长的单位名称",
    ]


def test_template_without_usable_examples_has_no_example_rows():
    spec = LedgerSpec(
        id="nx",
        title="无示例",
        department="jxj",
        key=("code",),
        columns=(ColumnSpec("code", "编号", pattern=r"^[A-Z]{3}$"),),
    )
    ws = _load(build_template(spec))["无示例"]
    assert ws.max_row == 1  # an example that breaks the ledger's own rules is worse than none


def test_template_label_that_looks_like_a_formula_stays_text():
    spec = LedgerSpec(id="f", title="公式", department="jxj", key=("a",), columns=(ColumnSpec("a", "=1+1"),))
    data = build_template(spec)
    _no_formulas(data)
    assert _load(data)["公式"]["A1"].value == "=1+1"


# --------------------------------------------------------------------------- marked workbooks


def test_marked_workbook_highlights_and_notes_every_bad_cell():
    res = ingest(C.typed_xlsx(BAD_ROWS, title="标题行"), "a.xlsx", C.SPEC)
    assert not res.ok
    data = build_marked_workbook(res)
    _no_formulas(data)
    wb = _load(data)
    assert wb.sheetnames == ["Sheet1", "错误清单", "填写说明"]  # the template's explanation comes along
    ws = wb["Sheet1"]
    assert ws["A1"].value == "标题行" and ws["A2"].value == "编号" and ws.freeze_panes == "A3"
    # the template's dropdowns and prompts on the person's own layout, from the first data row
    lists = {str(v.sqref): v.formula1 for v in ws.data_validations.dataValidation if v.type == "list"}
    assert lists == {"G3:G6": '"是,否"', "H3:H6": '"兴丰街道,清源街道,林校路街道"'}
    prompts = {str(v.sqref): v.promptTitle for v in ws.data_validations.dataValidation}
    assert prompts["C3:C6"] == "数量" and prompts["E3:E6"] == "开始日期"
    bad = {c.coordinate for row in ws.iter_rows() for c in row if c.comment}
    expected = {p.cell for p in res.problems if p.cell}
    assert bad == expected == {"A4", "C4", "E4", "G4", "B6", "H6"}
    assert ws["E4"].fill.fgColor.rgb == "FFFFC7CE" and "日期不存在" in ws["E4"].comment.text
    assert ws["E4"].value == "2023-02-30" and ws["B6"].value is None
    assert (
        ws["J4"].value == '=HYPERLINK("http://x")' and ws["J4"].data_type == "s"
    )  # text, not a live formula
    assert ws["E3"].value == dt.datetime(2023, 1, 2) and ws["E3"].number_format == "yyyy-mm-dd"
    errors = wb["错误清单"]
    assert "共 6 个错误" in errors["A1"].value
    rows = [[c.value for c in r] for r in errors.iter_rows(min_row=3)]
    assert [r[1] for r in rows] == ["A4", "C4", "E4", "G4", "B6", "H6"]
    assert errors["B3"].hyperlink.location == "'Sheet1'!A4"
    assert rows[2] == ["错误", "E4", "开始日期", "2023-02-30", "日期不存在", rows[2][5]] and "30 日" in rows[2][5]


def test_bad_rows_workbook_lists_only_rows_with_errors():
    res = ingest(C.typed_xlsx(BAD_ROWS), "a.xlsx", C.SPEC)
    data = build_bad_rows_workbook(res)
    assert _load(data).sheetnames == ["问题行"]  # notes only, by default: the quick download
    data = build_bad_rows_workbook(res, error_sheet=True)
    _no_formulas(data)
    wb = _load(data)
    ws = wb["问题行"]
    values = [[c.value for c in r] for r in ws.iter_rows()]
    assert values[0][:3] == ["原行号", "编号", "名称"]
    assert [r[0] for r in values[1:]] == [3, 5]
    assert values[1][1] == "JD０002" and values[1][10] == '=HYPERLINK("http://x")'
    assert ws["D2"].comment is not None and "不是整数" in ws["D2"].comment.text
    assert wb["错误清单"]["B3"].value == "A3"  # the original cell, linked to its copy here
    assert wb["错误清单"]["B3"].hyperlink.location == "'问题行'!B2"


def test_marked_workbook_refused_for_a_rejected_file():
    res = ingest(b"", "a.xlsx", C.SPEC)
    with pytest.raises(ValueError):
        build_marked_workbook(res)


# --------------------------------------------------------------------------- exports


def test_neutralise_and_csv_export():
    assert neutralise("=1+1") == "'=1+1" and neutralise("@SUM(A1)") == "'@SUM(A1)"
    assert neutralise("\t=x") == "'\t=x" and neutralise("-2+3") == "'-2+3" and neutralise("正常") == "正常"
    table = pa.table(
        {
            "code": ["=1+1", "+86 138", "ok", None],
            "qty": pa.array([-5, 2, 3, None], pa.int64()),
            "done": [True, False, None, True],
            "start": pa.array([dt.date(2023, 5, 1)] * 4, pa.date32()),
            "amount": [1.0, 2.5, None, 13800138000.0],
        }
    )
    spec = LedgerSpec(
        id="e",
        title="e",
        department="jxj",
        key=("code",),
        columns=(
            ColumnSpec("code", "编号"),
            ColumnSpec("qty", "数量", dtype="int"),
            ColumnSpec("done", "完成", dtype="bool"),
            ColumnSpec("start", "日期", dtype="date"),
            ColumnSpec("amount", "金额", dtype="float"),
        ),
    )
    text = export_csv(table, spec).decode("utf-8-sig").splitlines()
    assert text[0] == '"编号","数量","完成","日期","金额"'
    assert text[1] == '"\'=1+1","-5","是","2023-05-01","1"'
    assert text[2].startswith('"\'+86 138","2","否"')
    assert text[4].endswith('"13800138000"')
    assert export_csv(table, spec, encoding="gb18030").decode("gb18030").startswith('"编号"')


def test_xlsx_export_writes_formula_like_text_as_text():
    table = pa.table({"a": ["=1+1", "@x", "ok"], "b": pa.array([1, 2, 3], pa.int64())})
    data = export_xlsx(table)
    _no_formulas(data)
    ws = _load(data).active
    assert [c.value for c in ws["A"]] == ["a", "=1+1", "@x", "ok"] and ws["A2"].data_type == "s"


# --------------------------------------------------------------------------- bulk writes


def test_insert_arrow_into_duckdb():
    import duckdb

    res = ingest(C.typed_xlsx([C.good_row(i) for i in range(1, 6)]), "a.xlsx", C.SPEC)
    con = duckdb.connect()
    insert_arrow_duckdb(con, "ledger_corpus", res.table, create=True)
    insert_arrow_duckdb(con, "ledger_corpus", res.table)
    assert con.sql("SELECT count(*), min(start), sum(qty) FROM ledger_corpus").fetchall() == [
        (10, dt.date(2023, 1, 2), 30)
    ]
    assert con.sql("SELECT typeof(start), typeof(done) FROM ledger_corpus LIMIT 1").fetchall() == [
        ("DATE", "BOOLEAN")
    ]


@pytest.mark.postgres
def test_copy_arrow_into_postgres_keeps_null_and_empty_apart():
    psycopg = pytest.importorskip("psycopg")
    from huizhi.excel import copy_arrow_postgres

    url = os.environ.get("HUIZHI_TEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432/{db}")
    name = f"huizhi_test_{uuid.uuid4().hex[:10]}"
    try:
        admin = psycopg.connect(url.format(db="postgres"), autocommit=True, connect_timeout=3)
    except psycopg.OperationalError:
        pytest.skip("no PostgreSQL at 127.0.0.1:5432")
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        table = pa.table(
            {
                "s": ["", None, "=1+1", '引号"和,逗号'],
                "n": pa.array([1, None, 3, 4], pa.int64()),
                "f": [0.1, None, 1e20, 2.5],
                "d": pa.array(
                    [dt.date(2023, 5, 1), None, dt.date(2023, 5, 2), dt.date(2023, 5, 3)], pa.date32()
                ),
                "b": [True, None, False, True],
            }
        )
        with psycopg.connect(url.format(db=name)) as conn:
            conn.execute("CREATE TABLE t (s text, n bigint, f double precision, d date, b boolean)")
            copy_arrow_postgres(conn, "t", table, batch_rows=2)
            conn.commit()
            rows = conn.execute("SELECT s, n, f, d, b FROM t ORDER BY d NULLS FIRST, s").fetchall()
        assert rows == [
            (None, None, None, None, None),
            ("", 1, 0.1, dt.date(2023, 5, 1), True),
            ("=1+1", 3, 1e20, dt.date(2023, 5, 2), False),
            ('引号"和,逗号', 4, 2.5, dt.date(2023, 5, 3), True),
        ]
    finally:
        with psycopg.connect(url.format(db="postgres"), autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_ledger_export_is_the_template_with_the_rows_filled_in():
    table = pa.table({
        "code": ["JD0001", "JD0002", "JD0003"], "name": ["=1+1", "项目2", "0012"], "qty": pa.array([1, 2, 3], pa.int64()),
        "amount": [1.5, None, 3.0], "start": [dt.date(2023, 1, 1)] * 3, "end": [None, dt.date(2023, 6, 1), None],
        "done": [True, False, None], "street": ["兴丰街道", "清源街道", "林校路街道"], "budget": [None, None, 9.0],
        "note": [None, "+86 138", "x"],
    })  # fmt: skip
    data = export_xlsx(table, C.SPEC)
    _no_formulas(data)
    wb = _load(data)
    assert wb.sheetnames == ["测试台账", "填写说明"]
    ws = wb["测试台账"]
    assert [c.value for c in ws[1]] == C.HEADERS and ws.freeze_panes == "A2"
    assert "类型：整数" in ws["C1"].comment.text  # header notes
    validations = {str(dv.sqref): (dv.type, dv.formula1) for dv in ws.data_validations.dataValidation}
    assert validations["H2:H1048576"] == ("list", '"兴丰街道,清源街道,林校路街道"')  # dropdowns
    assert validations["G2:G1048576"] == ("list", '"是,否"')
    # the rows, not the examples: text as text (formula-like and leading zeros kept), dates as dates
    assert [c.value for c in ws["A"][1:]] == ["JD0001", "JD0002", "JD0003"] and ws.max_row == 4
    assert ws["B2"].value == "=1+1" and ws["B2"].data_type == "s" and ws["B4"].value == "0012"
    assert ws["B4"].number_format == "@"
    assert ws["E2"].value == dt.datetime(2023, 1, 1) and ws["E2"].number_format == "yyyy-mm-dd"
    assert [ws["G2"].value, ws["G3"].value, ws["G4"].value] == ["是", "否", None]
    guide = " ".join(str(c.value) for row in wb["填写说明"].iter_rows() for c in row if c.value)
    assert "导出时的数据" in guide and "新增和修改" in guide
    # and it goes back in as it came out
    res = ingest(data, "导出.xlsx", C.SPEC)
    assert res.stats.rows == 3 and res.table.column("name").to_pylist() == ["=1+1", "项目2", "0012"]
    assert res.table.column("done").to_pylist() == [True, False, None]
