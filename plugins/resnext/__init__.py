"""resnext plugin (in progress)."""
