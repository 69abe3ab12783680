"""The checks behind :mod:`zoo.testing`, one module per kind of item they run on.

:mod:`.plugins` checks a plugin as ``zoo list`` sees it (imports, registration,
names, declarations); :mod:`.models` checks its architectures and cards by
building models; :mod:`.examples` makes what they feed a model and reads what
comes back against the card. Nothing here imports torch at import time.
"""

from __future__ import annotations

from zoo.errors import ZooError


class ContractError(ZooError, AssertionError):
    """A plugin breaks a contract of the zoo; the message says which, and what to change.

    An ``AssertionError`` too, so pytest reports it as a failed check, not as a crash.
    """


class PluginCheckError(ZooError, AssertionError):
    """Every failed check of one plugin, in one message: one line per failure."""
