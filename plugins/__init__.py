"""The built-in plugins of AR Explorer. They register through the ``ar_explorer`` entry-point group, exactly as
third-party plugins do."""
