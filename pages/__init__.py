"""The portal's own pages (home, cockpit, ledger centre, admin), shipped as the built-in plugin
``builtin_pages``: they use the same hooks and the same PageContext as any department plugin."""
