"""Run profiles: how much data and compute a chapter uses.

Every chapter runs in one of three profiles, chosen by the environment
variable ``DLBOOK_PROFILE``:

``smoke``
    CI: tiny data, seconds per chapter; checks that the mechanics work.
``cpu``
    A laptop: real results in minutes on two cores.
``gpu``
    Colab or a data-centre GPU: full quality.

When ``DLBOOK_PROFILE`` is unset the profile is ``gpu`` if a GPU is visible
to the active Keras backend and ``cpu`` otherwise.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Mapping, TypeVar

T = TypeVar("T")

PROFILES: tuple[str, ...] = ("smoke", "cpu", "gpu")
"""The valid profile names, cheapest first."""

DEFAULT_SEED = 1234
"""Seed used when ``DLBOOK_SEED`` is unset."""


class ProfileError(ValueError):
    """Raised for an unknown profile name or an unusable seed."""


@dataclass(frozen=True)
class Profile:
    """The run profile a chapter executes in.

    Attributes:
        name: one of :data:`PROFILES`.
        seed: the seed for Python, NumPy and Keras random numbers.
        auto: True when the name was chosen automatically (no ``DLBOOK_PROFILE``).
    """

    name: str
    seed: int = DEFAULT_SEED
    auto: bool = False

    def __post_init__(self) -> None:
        if self.name not in PROFILES:
            raise ProfileError(
                f"unknown profile {self.name!r}: DLBOOK_PROFILE must be one of "
                + ", ".join(PROFILES)
            )

    def pick(self, *, smoke: T, cpu: T, gpu: T) -> T:
        """Return the value given for this profile.

        >>> Profile("cpu").pick(smoke=1, cpu=10, gpu=100)
        10
        """
        return {"smoke": smoke, "cpu": cpu, "gpu": gpu}[self.name]

    @property
    def is_smoke(self) -> bool:
        """True in the CI profile, where quality bars only check mechanics."""
        return self.name == "smoke"

    def __str__(self) -> str:  # pragma: no cover - trivial
        how = "auto" if self.auto else "DLBOOK_PROFILE"
        return f"{self.name} ({how}, seed {self.seed})"


def parse_seed(value: str | None) -> int:
    """Parse ``DLBOOK_SEED``; unset or empty gives :data:`DEFAULT_SEED`."""
    if value is None or value.strip() == "":
        return DEFAULT_SEED
    try:
        seed = int(value)
    except ValueError:
        raise ProfileError(f"DLBOOK_SEED must be a whole number, got {value!r}") from None
    if not 0 <= seed < 2**32:
        raise ProfileError(f"DLBOOK_SEED must be in [0, 2**32), got {seed}")
    return seed


def current_profile(
    environ: Mapping[str, str] | None = None, gpu_visible: bool | None = None
) -> Profile:
    """Read the profile and seed from the environment.

    Args:
        environ: the environment to read (default ``os.environ``).
        gpu_visible: whether a GPU is visible; detected lazily with
            :func:`dlbook.devices.gpu_visible` when needed and not given.

    Raises:
        ProfileError: if ``DLBOOK_PROFILE`` or ``DLBOOK_SEED`` is invalid.
    """
    env = os.environ if environ is None else environ
    seed = parse_seed(env.get("DLBOOK_SEED"))
    name = env.get("DLBOOK_PROFILE", "").strip().lower()
    if name:
        return Profile(name, seed)
    if gpu_visible is None:
        from . import devices

        gpu_visible = devices.gpu_visible()
    return Profile("gpu" if gpu_visible else "cpu", seed, auto=True)
