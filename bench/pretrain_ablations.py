"""Train the ablation models of an evaluation ahead of time, several at once, under the keys it will look for.

``anograph evaluate --ablate-edges --training-fractions ...`` trains each ablation model in
turn inside its flow, and reuses any model already stored under the same key
(:func:`anograph.evaluation.ablations.ablation_model_key`). On a machine with spare cores this script
trains those models in parallel processes first (one thread each), so the evaluation only
scores. It uses the library directly (no Prefect), with exactly the options the flow uses:
the main model's parameters, with only the graph edges or the training share changed.

    python bench/pretrain_ablations.py --storage /tmp/ped2-full/store \\
        --model models/ucsd-ped2-yolox-00d8ba5e56b8 --edges --fractions 0.1,0.5 --workers 2

Prints one line per model (key, nodes, epochs, seconds) and writes them as JSON with --json.
The main model need not exist yet: without it the options are AnoGraph's defaults with
``--epochs`` (what ``anograph run --epochs N`` trains), so both runs can go at once.
"""

from __future__ import annotations

import argparse
import json
import time
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import torch

from anograph.evaluation.ablations import EDGE_VARIANTS, ablation_model_key, discard_training_frames
from anograph.io.shards import read_shard
from anograph.io.storage import Storage
from anograph.models.estimator import AnoGraph
from anograph.ops.training_run import new_model


def _options(storage: Storage, model_key: str, model_options: dict[str, Any]) -> dict[str, Any]:
    if storage.exists(f"{model_key}/model.json"):
        model = AnoGraph.load(storage, model_key)
    else:
        model = new_model(model_options)
    options = model.get_params(deep=False) | {"graph": model.graph_config.to_dict()}
    if options.get("feature_groups") is not None:
        options["feature_groups"] = list(options["feature_groups"])
    return options


def _train(job: dict[str, Any]) -> dict[str, Any]:
    torch.set_num_threads(1)
    storage = Storage(job["storage"])
    if storage.exists(f"{job['key']}/model.json"):
        return {"key": job["key"], "reused": True}
    started = time.perf_counter()
    videos = [read_shard(storage, key) for key in job["shards"]]
    if job["keep_fraction"] < 1.0:
        videos = discard_training_frames(videos, job["keep_fraction"], job["seed"])
    model = new_model(job["options"]).fit(videos)
    model.save(storage, job["key"])
    return {"key": job["key"], "nodes": model.n_training_nodes_, "epochs": model.n_epochs_,
            "seconds": round(time.perf_counter() - started, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--storage", required=True)
    parser.add_argument("--model", required=True, help="the main model's key (models/<dataset>-<fingerprint>)")
    parser.add_argument("--edges", action="store_true", help="spatial-only and temporal-only models")
    parser.add_argument("--fractions", default="", help="comma-separated training shares, e.g. 0.1,0.5")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=None,
                        help="max epochs, as given to anograph run, when the main model does not exist yet")
    parser.add_argument("--json", default=None)
    arguments = parser.parse_args()

    storage = Storage(arguments.storage)
    fingerprint = arguments.model.rsplit("-", 2)[-2] + "-" + arguments.model.rsplit("-", 1)[-1]
    shards = sorted(storage.list(f"shards/{fingerprint}/train/"))
    if not shards:
        raise SystemExit(f"no training shards under shards/{fingerprint}/train/ in {storage.uri}")
    options = _options(storage, arguments.model,
                       {} if arguments.epochs is None else {"max_epochs": arguments.epochs})
    jobs = []
    if arguments.edges:
        for variant in ("spatial", "temporal"):
            variant_options = {**options, "graph": dict(options["graph"], **EDGE_VARIANTS[variant])}
            jobs.append((f"edges-{variant}", variant_options, 1.0))
    for text in filter(None, arguments.fractions.split(",")):
        jobs.append((f"fraction-{float(text):g}", options, float(text)))
    work = [
        {"storage": arguments.storage, "shards": shards, "options": job_options, "keep_fraction": fraction,
         "seed": arguments.seed,
         "key": ablation_model_key(arguments.model, variant,
                                   {**job_options, "keep_fraction": fraction, "seed": arguments.seed})}
        for variant, job_options, fraction in jobs
    ]
    with ProcessPoolExecutor(max_workers=arguments.workers) as pool:
        results = list(pool.map(_train, work))
    for result in results:
        print(json.dumps(result))
    if arguments.json:
        with open(arguments.json, "w", encoding="utf-8") as handle:
            json.dump(results, handle, indent=2)


if __name__ == "__main__":
    main()
