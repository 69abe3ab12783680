"""i3d plugin (in progress)."""
