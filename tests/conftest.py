"""Shared fixtures: where the real data lives, and how tests skip when it is absent."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("ANOGRAPH_SHARED", REPO.parent / "shared"))
PED2_ROOT = SHARED / "data" / "UCSD_Anomaly_Dataset.v1p2"
YOLOX_WEIGHTS = SHARED / "models" / "yolox_nano.onnx"


@pytest.fixture(scope="session")
def ped2_root() -> Path:
    """Root of the real UCSD dataset (holding ``UCSDped2``); skips where ../shared is absent."""
    if not (PED2_ROOT / "UCSDped2").is_dir():
        pytest.skip(f"real UCSD Ped2 not found at {PED2_ROOT} (needs ../shared beside the checkout)")
    return PED2_ROOT


@pytest.fixture(scope="session")
def yolox_weights() -> Path:
    """The real COCO YOLOX-Nano ONNX file; skips where ../shared is absent."""
    if not YOLOX_WEIGHTS.is_file():
        pytest.skip(f"YOLOX-Nano weights not found at {YOLOX_WEIGHTS} (needs ../shared beside the checkout)")
    return YOLOX_WEIGHTS


@pytest.fixture(autouse=True)
def _prefect_quiet(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    """Keep Prefect's temporary server quiet and off the network (see ../shared/FACTS.md)."""
    monkeypatch.setenv("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    monkeypatch.setenv("DO_NOT_TRACK", "1")
    monkeypatch.setenv("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "90")
