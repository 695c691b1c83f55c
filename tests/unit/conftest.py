"""Shared fixtures for dlbook's unit tests."""

import matplotlib

matplotlib.use("Agg")  # no display: figures are drawn off-screen

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def close_figures():
    """Close every figure a test opened, so figures never pile up across tests."""
    yield
    plt.close("all")
