"""The spatio-temporal graph: the training graph (``build``), the sliding test windows
(``windows``) and batches of whole videos read from shards (``batches``)."""
