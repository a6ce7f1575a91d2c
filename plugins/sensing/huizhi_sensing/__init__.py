"""慧治 (huizhi) plugin of 区经济和信息化局: the district sensing front-end ledger (感知前端管理台账)."""

__version__ = "0.1.0"
