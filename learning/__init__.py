"""Preflab's machine-learning package: plain data in, plain results out.

Never imports Django. This module and ``learning.data`` must stay free of torch, because the
web process imports them; heavy imports live inside the modules that need them.
"""

from importlib import metadata


def _code_version() -> str:
    try:
        return metadata.version("preflab")
    except metadata.PackageNotFoundError:  # running from a source tree that was never installed
        return "0+unknown"


__version__ = _code_version()
