"""weakmir: train music models from the labels people actually have.

Layers (lower never imports higher): ``audio`` <- ``data`` <- ``models`` <-
``methods`` <- ``cli``.
"""

__version__ = "0.1.0"

from .errors import WeakmirError  # noqa: E402,F401
