"""huizhi (慧治): plugin host, portal and leadership cockpit for a district government."""

import pluggy as _pluggy

__all__ = ["HOST_API_VERSION", "__version__", "hookimpl"]

__version__ = "0.1.0"

# The version of the plugin contract (hookspecs + specs). Plugins declare the range they support
# in PluginInfo.host_api; bump the major version when a change would break existing plugins.
HOST_API_VERSION = "1.0"

#: Marker for hook implementations in plugins: ``@hookimpl def huizhi_pages(): ...``
hookimpl = _pluggy.HookimplMarker("huizhi")
