"""Per-object attribute densities: what is unusual about one object, each on its own scale.

Each attribute (speed and direction, class, appearance, interaction with neighbours) is a
small density estimator fitted on normal objects (:mod:`.densities`). The ensemble
(:mod:`.ensemble`) calibrates each on leave-one-video-out training scores and sums them, so
an object unusual in one respect is not averaged away by the respects in which it is
ordinary (the scheme of AI-VAD, Reiss & Hoshen 2022). Which attributes and variants a
dataset uses is chosen from its normal footage alone (:mod:`anograph.selection`).
"""
