"""Measuring a model against test labels: metrics, the evaluation protocol, ablations,
published figures and the report. Labels enter here and nowhere else."""
