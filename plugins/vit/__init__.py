"""vit plugin (in progress)."""
