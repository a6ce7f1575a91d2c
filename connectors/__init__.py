"""Built-in connectors, shipped as the plugin ``builtin_connectors`` through the public hooks."""
