"""Label-free model selection: choose a dataset's scorer settings from its normal footage alone.

Test labels never choose anything in anograph. Instead, each candidate setting is scored on
*pseudo-anomalies* made from the training videos (:mod:`.pseudo_anomalies`) and held out
video by video (:mod:`.validation`), and the candidate that best tells them from the
held-out normal objects wins (:mod:`.choice`). The report shows every candidate, its
validation figures and the choice.
"""
