"""c3d plugin (in progress)."""
