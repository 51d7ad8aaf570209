"""The learned model: the DGI modules (``dgi``), their training (``training``, ``fused_epoch``,
``fitting``, ``streamed_fit``), the input scaling (``scaling``), the scorers (``scorers``, ``knn``),
artifacts (``artifact``) and the ``AnoGraph`` estimator that composes them (``estimator``)."""
