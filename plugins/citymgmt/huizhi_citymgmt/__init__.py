"""慧治 (huizhi) plugin of 区城市管理委: the city-management case ledger and its closed loop."""

__version__ = "0.1.0"
