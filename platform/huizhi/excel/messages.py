"""Chinese texts for problems: what is wrong (message) and how to fix it (hint).

Kept in one place so wording stays consistent between the page, the marked workbook and the
template's explanations. Messages do not repeat the cell's value (it is shown beside them), so
problems of one kind in one column share a message and group well in summaries.
"""

from __future__ import annotations

from huizhi.specs import ColumnSpec

DTYPE_LABELS = {"str": "文本", "int": "整数", "float": "数字", "date": "日期", "bool": "是/否"}

DATE_FORMS = "2023-05-01、2023/5/1、2023年5月1日 或 20230501"
TRUE_WORDS = ("是", "true", "t", "y", "yes", "1", "对", "√", "✓")
FALSE_WORDS = ("否", "false", "f", "n", "no", "0", "错", "×", "✗")


def num(v: float | None) -> str:
    if v is None:
        return ""
    return f"{v:g}" if abs(v) < 1e15 else str(v)


def example_part(col: ColumnSpec) -> str:
    return f"，例如：{col.example}" if col.example else ""


def required(col: ColumnSpec) -> tuple[str, str]:
    extra = ""
    if col.choices:
        extra = f"，可选：{choices_text(col)}"
    return "必填项为空", f"请填写「{col.label}」{extra or example_part(col)}"


def choices_text(col: ColumnSpec, limit: int = 15) -> str:
    items = list(col.choices or ())
    text = "、".join(items[:limit])
    return text + (f" 等 {len(items)} 项（见模板下拉列表）" if len(items) > limit else "")


# (dtype, reason) -> (message, hint); reasons come from huizhi.excel.convert
_TYPE_TEXTS: dict[tuple[str, str], tuple[str, str]] = {
    ("int", "not_number"): ("不是整数", "请填写整数（阿拉伯数字），不要带单位、文字或空格，例如 12"),
    ("int", "not_integer"): ("应为整数，但填写了小数", "请填写整数，例如 12"),
    ("int", "too_big"): ("数字太大，超出范围", "请检查是否多输入了数字"),
    ("int", "percent"): ("不是整数（带了 % 号）", "请去掉 % 号，只填写数字"),
    ("int", "is_date"): (
        "应为整数，但填写了日期",
        "请填写整数；如果单元格被自动设成了日期格式，请改为“常规”或“数值”格式",
    ),
    ("int", "is_bool"): ("应为整数，但填写了是/否", "请填写整数"),
    ("float", "not_number"): ("不是数字", "请填写数字（可以带小数），不要带单位、文字或空格，例如 12.5"),
    ("float", "not_finite"): ("不是有效的数字（无穷大或非数字）", "请填写一个正常的数字"),
    ("float", "percent"): ("不是数字（带了 % 号）", "请去掉 % 号，按列说明填写数字"),
    ("float", "is_date"): (
        "应为数字，但填写了日期",
        "请填写数字；如果单元格被自动设成了日期格式，请改为“常规”或“数值”格式",
    ),
    ("float", "is_bool"): ("应为数字，但填写了是/否", "请填写数字"),
    ("date", "not_date"): ("无法识别的日期", f"请填写日期，例如 {DATE_FORMS}，或把单元格设为日期格式"),
    ("date", "bad_date"): ("日期不存在", "请检查年月日，例如 2 月没有 30 日，月份在 1 到 12 之间"),
    ("date", "is_bool"): ("应为日期，但填写了是/否", f"请填写日期，例如 {DATE_FORMS}"),
    ("bool", "not_bool"): ("不是“是”或“否”", "请填写 是 或 否（也接受 TRUE/FALSE、Y/N、1/0）"),
    ("str", "too_long"): ("文本太长", "单元格文字不能超过 32767 个字符"),
}


def type_problem(col: ColumnSpec, reason: str) -> tuple[str, str]:
    msg, hint = _TYPE_TEXTS.get((col.dtype, reason), (f"不是有效的{DTYPE_LABELS.get(col.dtype, '')}", ""))
    if col.example and "例如" not in hint:
        hint += example_part(col)
    return msg, hint


def choice(col: ColumnSpec) -> tuple[str, str]:
    return "不在可选值中", f"请从下拉列表中选择：{choices_text(col)}"


def minimum(col: ColumnSpec) -> tuple[str, str]:
    return f"小于最小值 {num(col.min)}", f"请填写不小于 {num(col.min)} 的{DTYPE_LABELS.get(col.dtype, '数')}"


def maximum(col: ColumnSpec) -> tuple[str, str]:
    return f"大于最大值 {num(col.max)}", f"请填写不大于 {num(col.max)} 的{DTYPE_LABELS.get(col.dtype, '数')}"


def pattern(col: ColumnSpec) -> tuple[str, str]:
    hint = col.pattern_hint or f"应符合格式 {col.pattern}"
    return "格式不正确", f"{hint}{example_part(col)}"


def duplicate(labels: list[str]) -> tuple[str, str]:
    what = "+".join(f"「{x}」" for x in labels)
    joint = "组合" if len(labels) > 1 else ""
    return f"{what}{joint}重复", f"{what}{joint}在表中必须唯一：请检查是否重复录入，删除重复行或更正编号"


def range_text(col: ColumnSpec) -> str:
    if col.dtype not in ("int", "float"):
        return ""
    if col.min is not None and col.max is not None:
        return f"{num(col.min)} ～ {num(col.max)}"
    if col.min is not None:
        return f"≥ {num(col.min)}"
    if col.max is not None:
        return f"≤ {num(col.max)}"
    return ""
