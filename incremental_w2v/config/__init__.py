"""The config: its schema, strict YAML loading, and the quality sections."""
