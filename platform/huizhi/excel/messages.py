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
    ("int", "bad_separator"): (
        "数字中的逗号或空格不是千位分隔符",
        "千位分隔符只能每三位一组（例如 1,234,567），也可以不写；整数列不能填小数",
    ),
    ("float", "bad_separator"): (
        "数字中的逗号或空格不是千位分隔符",
        "小数请用小数点（例如 12,5 应写成 12.5）；千位分隔符只能每三位一组（例如 1,234,567），也可以不写",
    ),
    ("str", "control_char"): (
        "包含不可见的控制字符",
        "这些字符看不见，但会改变文字的显示（例如 U+202E 会让文字倒着显示、与实际内容不同）或干扰其他系统。"
        "请清空该单元格后重新输入，不要从网页或其他软件直接粘贴",
    ),
}

_CONTROL_NAMES = {
    0x07: "响铃符 BEL",
    0x08: "退格符 BS",
    0x0B: "垂直制表符 VT",
    0x0C: "换页符 FF",
    0x1B: "转义符 ESC（终端控制序列）",
    0x7F: "删除符 DEL",
    0x061C: "阿拉伯字母标记",
    0x200E: "从左到右标记",
    0x200F: "从右到左标记",
    0x202A: "从左到右嵌入",
    0x202B: "从右到左嵌入",
    0x202C: "方向格式结束",
    0x202D: "从左到右覆盖",
    0x202E: "从右到左覆盖（可让文字显示得与实际内容不同）",
    0x2066: "从左到右隔离",
    0x2067: "从右到左隔离",
    0x2068: "方向隔离",
    0x2069: "方向隔离结束",
}


def is_control(ch: str) -> bool:
    o = ord(ch)
    return (
        (o < 0x20 and ch not in "\t\n\r")
        or 0x7F <= o <= 0x9F
        or o in (0x061C, 0x200E, 0x200F)
        or 0x202A <= o <= 0x202E
        or 0x2066 <= o <= 0x2069
    )


def control_names(text: str | None) -> str:
    """``U+202E（从右到左覆盖…）、U+0007（响铃符 BEL）`` for the control characters in ``text``."""
    seen: list[str] = []
    for ch in text or "":
        if is_control(ch) or ch == "\x00":
            name = "空字符 NUL" if ch == "\x00" else _CONTROL_NAMES.get(ord(ch), "控制字符")
            item = f"U+{ord(ch):04X}（{name}）"
            if item not in seen:
                seen.append(item)
    return "、".join(seen[:5])


def visible(text: str | None) -> str | None:
    """``text`` with control characters shown as ``<U+202E>``: safe to show to other people."""
    if text is None or not any(is_control(ch) or ch == "\x00" for ch in text):
        return text
    return "".join(f"<U+{ord(ch):04X}>" if is_control(ch) or ch == "\x00" else ch for ch in text)


def separator_message(text: str | None) -> str:
    """What a badly separated number probably meant (``12,5`` -> 12.5), or the rule alone."""
    import re
    import unicodedata

    base = "数字中的逗号或空格不是千位分隔符"
    t = unicodedata.normalize("NFKC", text or "").strip()
    if re.fullmatch(r"[+-]?[0-9]+,[0-9]+", t):
        return f"{base}：如果是小数，应写成 {t.replace(',', '.')}"
    if re.fullmatch(r"[+-]?[0-9]{1,3}(\.[0-9]{3})+,[0-9]+", t):
        return f"{base}：如果是 {t.replace('.', '').replace(',', '.')}，请写成 {t.replace('.', '').replace(',', '.')}"
    return base


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
