"""Shared fixtures: where the real data lives, and how tests skip when it is absent."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# Prefect reads these when first imported. Its temporary server logs at INFO when it stops at
# interpreter exit, after pytest has closed the captured streams; WARNING keeps that quiet.
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "90")

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

