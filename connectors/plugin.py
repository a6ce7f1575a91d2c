"""Registers the built-in connectors through the public plugin interface."""

from __future__ import annotations

from huizhi import HOST_API_VERSION, __version__, hookimpl
from huizhi.specs import ConnectorSpec, PluginInfo


def _files(config):
    from huizhi_connectors.files import FilesConnection

    return FilesConnection.from_config(config)


def _sql(config):
    from huizhi_connectors.sql import SQLConnection

    return SQLConnection.from_config(config)


def _rest(config):
    from huizhi_connectors.rest import RestConnection

    return RestConnection.from_config(config)


@hookimpl
def huizhi_plugin_info() -> PluginInfo:
    return PluginInfo(name="builtin_connectors", title="内置连接器", department=None, version=__version__,
                      host_api=f">={HOST_API_VERSION}", description="文件（Excel/CSV/Parquet）、SQL 数据库、REST（OAuth2）")


@hookimpl
def huizhi_connectors() -> list[ConnectorSpec]:
    return [
        ConnectorSpec("files", "文件夹（Excel / CSV / Parquet）", _files, kind="file", config_keys=("root",)),
        ConnectorSpec("sql", "SQL 数据库", _sql, kind="sql", config_keys=("url", "statement_timeout")),
        ConnectorSpec("rest", "REST 接口（OAuth2 客户端凭证）", _rest, kind="rest",
                      config_keys=("base_url", "token_endpoint", "client_id", "client_secret", "scope", "timeout",
                                   "pagination", "items_key", "next_key", "page_param", "page_size_param",
                                   "page_size", "max_pages", "rate_limit_retries", "max_retry_after")),
    ]
