"""The ``incw2v`` command line: parse, call the library once, map errors to exit codes."""
