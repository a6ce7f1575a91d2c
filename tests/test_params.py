"""Query parameters as pages read them (drill-down links, shared URLs, crafted URLs)."""

from __future__ import annotations

from huizhi import district
from huizhi import params as P


def test_values_under_any_name_as_lists_or_comma_text():
    assert P.values({"streets": "兴丰街道，瀛海镇,兴丰街道"}, "street", "streets") == ("兴丰街道", "瀛海镇")
    assert P.values({"street": ["旧宫镇", "x"]}, "street", allowed=district.street_names()) == ("旧宫镇",)
    assert P.values({}, "street") == ()


def test_departments_by_name_or_id_unknown_dropped():
    assert P.departments({"dept": "gaj,区水务局,nowhere"}, "dept") == ("区公安分局", "区水务局")


def test_flags_and_text():
    assert P.flag({"overdue": "是"}, "overdue") is True
    assert P.flag({"networked": "0"}, "networked") is False
    assert P.flag({"networked": "maybe"}, "networked") is None
    assert P.text({"q": "  " + "长" * 300}, "q") == "长" * 100
