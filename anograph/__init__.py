"""anograph: video anomaly detection from object interactions (Ano-Graph, 2021).

The package is a plain library (no Prefect inside). Data flows one way::

    video -> detections + node features -> feature shard (Parquet)
          -> spatio-temporal graph (scipy.sparse) -> GCN + DGI model
          -> per-object / per-frame scores -> metrics report

Prefect orchestration lives in the top-level ``tasks/`` and ``flows/`` packages.
"""

__version__ = "0.1.0"
