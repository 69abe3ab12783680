"""The name zoo is published under on the package index, and its version.

The import package, the ``zoo`` command and the ``zoo`` entry-point group keep the
short name; the distribution is ``zoo-models`` (``pip install zoo-models``), since
``zoo`` on the index is another project (as Pillow installs ``PIL``).
"""

DISTRIBUTION = "zoo-models"
__version__ = "0.1.0"
