"""fpn plugin (in progress)."""
