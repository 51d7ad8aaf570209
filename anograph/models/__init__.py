"""The learned model: the DGI modules, their training, the scorers and the ``AnoGraph``
estimator that composes them."""
