"""The portal's own pages (``huizhi_pages``) are host code, not plugins: they reach the host here.

Built-in pages are registered through the same hooks as a department's, and use the same
contexts; what only the platform itself shows (plugin status, the audit log, the cockpit
engine, the role-mapping simulator) needs the host behind the context. That is this one
function, which is not part of the plugin contract: a test fails when a plugin imports it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from huizhi.context import PageContext, TileContext
    from huizhi.host import Host


def host_of(ctx: PageContext | TileContext) -> Host:
    """The host behind a context (portal pages only)."""
    return ctx._host
