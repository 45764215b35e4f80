"""AR Explorer: see inside autoregressive likelihood models of images."""

__version__ = "0.1.0"
