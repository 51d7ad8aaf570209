"""Flow: train the GCN + DGI model on training shards and save the artifact."""

from __future__ import annotations

import time
from typing import Any

from prefect import flow

from tasks.train import build_training_graph, discard_frames, fit_model, load_shards, new_model, save_model


@flow(name="train")
def train(storage_root: str, shard_keys: list[str], model_key: str,
          model_options: dict[str, Any] | None = None, keep_fraction: float = 1.0,
          fraction_seed: int = 0) -> dict[str, Any]:
    """Load the shards, build the training graph, fit, and save to ``model_key``.

    ``keep_fraction`` < 1 trains on a seeded random share of the training frames (the
    others are emptied; see :func:`anograph.ablations.discard_training_frames`).
    Returns the model key and the seconds spent building the graph and fitting.
    """
    videos = load_shards(storage_root, shard_keys)
    if keep_fraction < 1.0:
        videos = discard_frames(videos, keep_fraction, fraction_seed)
    model = new_model(model_options or {})
    started = time.perf_counter()
    graph = build_training_graph(model, videos)
    graph_seconds = time.perf_counter() - started
    model = fit_model(model, graph)
    save_model(model, storage_root, model_key)
    return {
        "model_key": model_key,
        "seconds": {"graph": graph_seconds, "train": time.perf_counter() - started - graph_seconds},
        "n_training_nodes": graph.n_nodes,
        "n_training_edges": graph.n_edges,
        "n_epochs": model.n_epochs_,
        "training_separation": model.training_separation_,
    }
