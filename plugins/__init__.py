"""The built-in plugins, one subpackage per architecture family.

Each is registered under the ``zoo`` entry-point group in pyproject.toml, the
way a third-party package registers its own; the core never imports them by name.
"""
