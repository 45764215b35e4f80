"""Plugins as authors write them, each with one thing to find: loaded by module name in the tests
(``AR_EXPLORER_PLUGINS=example_plugins.NAME``), exactly as a user loads theirs."""
