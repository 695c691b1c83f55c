"""dlbook: the helper package of the book "Deep Learning, Worked".

Plumbing lives here (profiles, data, plotting style, start-up); the lessons'
own model code stays in the chapters. Importing ``dlbook`` never imports
TensorFlow; helpers import the backend they need lazily.
"""

from __future__ import annotations

from .profiles import PROFILES, Profile, ProfileError, current_profile
from .runtime import quiet_environment, setup

try:  # one source of the version: pyproject.toml, through the installed metadata
    from importlib.metadata import PackageNotFoundError, version as _version

    __version__ = _version("dlbook")
except PackageNotFoundError:  # pragma: no cover - run from a source tree, not installed
    __version__ = "0+unknown"

# Quiet TensorFlow's native logging before any chapter imports it.
quiet_environment()

__all__ = [
    "PROFILES",
    "Profile",
    "ProfileError",
    "current_profile",
    "setup",
    "__version__",
]
