"""Corpus formats: how the records (texts) of a decompressed stream are found."""
