"""Reading corpora: sources, decompression, formats, tokenising, the one streaming pass."""
