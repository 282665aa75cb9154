"""What every test shares: movies published by the CLI go to a temporary folder, never into
the checkout's ./movies (the CLI's default when neither --output nor $TUTOPANDA_MOVIES_DIR
is given)."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def _movies_dir(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path_factory.mktemp("movies")
    monkeypatch.setenv("TUTOPANDA_MOVIES_DIR", str(folder))
    return folder
