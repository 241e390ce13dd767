"""``python -m incremental_w2v``."""

from incremental_w2v.cli.main import entry_point

entry_point()
