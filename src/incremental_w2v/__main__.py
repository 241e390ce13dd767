"""``python -m incremental_w2v``."""

from .cli import entry_point

entry_point()
