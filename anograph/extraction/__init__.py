"""Video to objects: detectors, node features, and the per-video extraction loop."""
