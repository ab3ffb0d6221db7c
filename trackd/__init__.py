"""trackd: a self-hosted event tracking server that speaks MoEngage's Data API."""

__version__ = "0.1.0"
