"""The versioned store: versions, manifest, locks, and the commands that steer it."""
