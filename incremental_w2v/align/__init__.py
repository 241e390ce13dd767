"""Bringing a separately trained model into another's space, and merging the two."""
