"""区园林绿化局 公园绿地台账 (a huizhi plugin kept outside the host's repository layout)."""

__version__ = "0.1.0"
