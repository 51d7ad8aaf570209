"""Node features: what goes into each object's feature vector (see ``extractor``)."""

from anograph.extraction.features.layout import FeatureLayout

__all__ = ["FeatureLayout"]
