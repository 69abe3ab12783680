"""detr plugin (in progress)."""
