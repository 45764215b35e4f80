"""The bad-input corpus, made by code in :mod:`bad_inputs.make` (never downloaded)."""
