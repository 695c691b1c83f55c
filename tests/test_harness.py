"""The harness decides what the site renders: its cache must hold one profile's outputs."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness  # noqa: E402


def test_claim_cache_discards_another_profiles_outputs(tmp_path, monkeypatch):
    folder = tmp_path / "cache"
    monkeypatch.setattr(harness, "cache_folder", lambda: folder)
    assert harness.claim_cache("smoke") is False  # nothing there yet
    (folder / "outputs.db").write_text("smoke outputs")
    assert harness.claim_cache("smoke") is False and (folder / "outputs.db").exists()
    assert harness.claim_cache("cpu") is True, "smoke outputs must not be rendered as cpu's"
    assert not (folder / "outputs.db").exists()
    assert (folder / harness.PROFILE_STAMP).read_text().strip() == "cpu"


def test_claim_cache_discards_an_unstamped_cache(tmp_path, monkeypatch):
    folder = tmp_path / "cache"
    folder.mkdir()
    (folder / "outputs.db").write_text("who knows")
    monkeypatch.setattr(harness, "cache_folder", lambda: folder)
    assert harness.claim_cache("cpu") is True
