"""The version floors are stated once and stay within Google Colab's runtime.

pyproject.toml's ``[project].dependencies`` holds the floors (``make floors``
installs exactly those and runs the tests on them); ``runtime.MIN_VERSIONS``
(what ``setup()`` warns about) must say the same, and no floor may exceed
what Colab ships (tests/colab/colab-constraints.txt), or the book would not
install on Colab without upgrading its preinstalled packages.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

from dlbook import runtime

ROOT = Path(__file__).resolve().parents[2]
COLAB = ROOT / "tests" / "colab" / "colab-constraints.txt"


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pyproject_floors() -> dict[str, str]:
    """``{name: floor}`` from each ``>=`` in ``[project].dependencies``."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    floors = {}
    for line in project["dependencies"]:
        req = Requirement(line)
        lows = [s.version for s in req.specifier if s.operator == ">="]
        assert len(lows) == 1, f"{line!r}: every runtime dependency needs exactly one >= floor"
        floors[canonical(req.name)] = lows[0]
    return floors


def colab_versions() -> dict[str, str]:
    pins = {}
    for line in COLAB.read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, _, version = line.partition("==")
            pins[canonical(name)] = version.strip()
    return pins


def test_min_versions_are_the_pyproject_floors():
    floors = pyproject_floors()
    for pkg, low in runtime.MIN_VERSIONS.items():
        assert canonical(pkg) in floors, f"MIN_VERSIONS names {pkg}, which pyproject does not depend on"
        assert low == floors[canonical(pkg)], (
            f"runtime.MIN_VERSIONS[{pkg!r}] is {low} but pyproject.toml says >={floors[canonical(pkg)]}"
        )


@pytest.mark.parametrize("pkg", sorted(pyproject_floors()))
def test_floor_is_not_above_colab(pkg):
    colab = colab_versions()
    assert pkg in colab, f"{pkg} is a runtime dependency but not in {COLAB.name}"
    floor = pyproject_floors()[pkg]
    assert Version(floor) <= Version(colab[pkg]), (
        f"{pkg}>={floor} is above Colab's {colab[pkg]}: the book would not run on Colab as shipped"
    )
