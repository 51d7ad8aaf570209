"""Choose a dataset's attribute ensemble from its normal footage (the protocol the report shows).

1. **Velocity variant.** Each variant of the velocity density (:data:`VELOCITY_VARIANTS`:
   speed alone or with direction, each in frame heights, in the object's box heights, or
   position-aware; speed with the direction histogram, in frame or box heights) is validated
   on the motion pseudo-anomalies (``speed``, ``reverse``, ``cross``), and the one with the
   highest mean frame AUC is kept (ties, within
   :data:`AUC_TIE_TOLERANCE`, go to the simpler). Speeds per box height and position-aware
   densities suit strong perspective (and the latter fixed lanes), and cost accuracy where
   speed means the same everywhere; the footage decides which holds. The chosen variant is then
   validated again with its flow statistics averaged along each track (over half the offered
   smoothing radius, and over all of it; :func:`averaging_radii`): a real anomaly's motion lasts,
   one frame's flow noise does not. Likewise the variant of
   the one-sided ``speed`` density (:data:`SPEED_VARIANTS`: in frame or box heights), on the
   ``speed`` pseudo-anomalies alone, since it reads no direction, then averaged along tracks as the
   velocity is; and, where the detector has
   classes, the ``shape`` density's (:data:`SHAPE_VARIANTS`: boxes against their source's, or
   against their detected class's) on the ``shape`` pseudo-anomalies.
2. **Attributes.** Every non-empty combination of the available attributes (that velocity,
   that ``speed``, ``shape``, ``class`` where the detector has classes, ``appearance`` where the shards have it,
   ``interaction``) is validated on every applicable pseudo-anomaly kind, once per rule that
   combines their calibrated scores (:data:`~anograph.attributes.ensemble.COMBINATIONS`: the
   sum, then the max). Its figure is the mean over anomaly families (:data:`KIND_FAMILIES`:
   motion, shape, class, place, interaction) of each family's mean AUC; the highest wins, and ties
   (within :data:`AUC_TIE_TOLERANCE`) go to the sum, then to fewer attributes. An attribute no
   pseudo-anomaly speaks for is kept only if it does not cost the others.
3. **Track smoothing.** The chosen ensemble's combined score, averaged along each object's track over the test
   window (:mod:`anograph.attributes.track_smoothing`), against no smoothing, on the same
   pseudo-anomalies (which alter whole tracks); ties go to no smoothing.
4. **Motion field**, where the shards have cell speeds: the chosen ensemble with the motion field
   beside it (:mod:`anograph.attributes.motion_field`: a frame takes the worse of its worst object
   and its worst cell's calibrated rarity), one density for all cells or one per place, against the
   ensemble alone, on every kind and on ``missed`` (a fast track the detector missed, which only
   the cells see; in the motion family); ties go to the ensemble alone, then to the pooled field.

Every figure is a held-out frame AUC on the training videos (:mod:`.validation`); the test
set is never read.
"""

from __future__ import annotations

import itertools
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from anograph.attributes.densities import ClassRarity, make_density
from anograph.attributes.ensemble import (
    COMBINATIONS,
    MAX_FOLDS,
    AttributeEnsemble,
    HeldOutFits,
    held_out_parts,
)
from anograph.attributes.motion_field import CalibratedMotionField, MotionFieldDensity
from anograph.attributes.objects import ObjectAttributes
from anograph.errors import InputError
from anograph.selection.pseudo_anomalies import MISSED, MOTION_KINDS, applicable_kinds
from anograph.selection.validation import ValidationScores

#: The velocity variants tried in step 1, simplest first (ties go to the earlier one).
VELOCITY_VARIANTS = (
    {"direction": False, "position_aware": False},
    {"direction": True, "position_aware": False},
    {"direction": False, "per_height": True},
    {"direction": True, "per_height": True},
    {"direction": False, "position_aware": True},
    {"direction": True, "position_aware": True},
    {"histogram": True},
    {"histogram": True, "per_height": True},
)
#: The one-sided speed variants tried in step 1, simplest first, and the kinds they are validated on.
SPEED_VARIANTS = ({}, {"per_height": True})
SPEED_KINDS = ("speed",)
#: The shape variants tried in step 1 where the detector has classes, simplest first: boxes against
#: their source's, or detector boxes against their detected class's.
SHAPE_VARIANTS = ({}, {"per_class": True})
SHAPE_KINDS = ("shape",)
#: Mean-AUC gains below this are within the validation's sampling noise (a direction term on
#: footage without a usual direction gains a little by chance): the simpler candidate wins.
AUC_TIE_TOLERANCE = 0.01


#: The anomaly family of each pseudo-anomaly kind. A combination's figure averages families,
#: not kinds, so that three ways of moving oddly count once, as the shape or class family does,
#: and an attribute that merely echoes another's motion signal earns no extra weight.
KIND_FAMILIES = {"speed": "motion", "reverse": "motion", "cross": "motion", "missed": "motion", "shape": "shape",
                 "class": "class", "place": "place", "follow": "interaction"}


@dataclass
class CandidateResult:
    """One validated candidate: its attributes, how they combine, and its frame AUC per pseudo-anomaly kind."""

    attributes: list[tuple[str, dict[str, Any]]]
    labels: list[str]
    aucs: dict[str, float]
    step: str
    track_radius: int = 0
    combination: str = "sum"
    motion_field: str | None = None  # the motion field's variant beside the ensemble (its label)

    @property
    def mean_auc(self) -> float:
        """Mean over anomaly families of the family's mean AUC (:data:`KIND_FAMILIES`)."""
        families: dict[str, list[float]] = {}
        for kind, value in self.aucs.items():
            if np.isfinite(value):
                families.setdefault(KIND_FAMILIES.get(kind, kind), []).append(value)
        return float(np.mean([np.mean(values) for values in families.values()])) if families else float("nan")

    def to_json(self) -> dict[str, Any]:
        return {"step": self.step, "attributes": self.labels, "aucs": self.aucs, "mean_auc": self.mean_auc,
                "track_radius": self.track_radius, "combination": self.combination,
                "motion_field": self.motion_field}


@dataclass
class Selection:
    """The outcome of :func:`select_attributes`: the chosen ensemble (fitted) and every candidate."""

    ensemble: AttributeEnsemble
    chosen: CandidateResult
    candidates: list[CandidateResult]
    kinds: list[str]
    n_folds: int
    notes: list[str] = field(default_factory=list)
    #: The validation's scores and the chosen ensemble's keys in them (in memory only, for :meth:`validate_on`).
    scores: ValidationScores | None = field(default=None, repr=False, compare=False)
    chosen_keys: tuple[int, ...] = field(default=(), repr=False, compare=False)
    #: The motion field beside the ensemble, where step 4 chose it (fitted on every training video).
    motion_field: CalibratedMotionField | None = field(default=None, repr=False, compare=False)

    def validate_on(self, videos: Collection[str]) -> CandidateResult:
        """The chosen ensemble's figures on the held-out ``videos`` alone (names; one camera's, say)."""
        if self.scores is None:
            raise InputError(None, "this selection kept no validation scores")
        chosen = self.chosen
        aucs = {kind: self.scores.auc(list(self.chosen_keys), kind, chosen.track_radius, chosen.combination,
                                      videos=videos, motion_field=chosen.motion_field) for kind in self.kinds}
        return CandidateResult(chosen.attributes, chosen.labels, aucs, "on a subset of videos",
                               chosen.track_radius, chosen.combination, chosen.motion_field)

    def to_json(self) -> dict[str, Any]:
        return {
            "protocol": "held-out pseudo-anomaly frame AUC on the training videos (anograph.selection)",
            "kinds": self.kinds,
            "n_folds": self.n_folds,
            "chosen": self.chosen.to_json(),
            "candidates": [candidate.to_json() for candidate in self.candidates],
            "notes": self.notes,
        }


def _best(results: Sequence[CandidateResult]) -> CandidateResult:
    # Highest mean AUC; among equals (to AUC_TIE_TOLERANCE) the one listed first (the simpler).
    best = results[0]
    for result in results[1:]:
        if result.mean_auc > best.mean_auc + AUC_TIE_TOLERANCE:
            best = result
    return best


def averaging_radii(track_radii: Sequence[int]) -> list[int]:
    """The track-averaging radii step 1 offers the velocity variant: half of each offered radius, and the radius."""
    offered = [int(radius) for radius in track_radii if int(radius) > 0]
    return sorted({radius // 2 for radius in offered if radius > 1} | set(offered))


def select_attributes(videos: Sequence[ObjectAttributes], seed: int = 0, max_folds: int = MAX_FOLDS,
                      track_radii: Sequence[int] = (0,)) -> Selection:
    """Validate the candidates on pseudo-anomalies of ``videos`` and fit the winner on all of them.

    ``track_radii`` are the track-smoothing radii step 3 chooses from (0 = none; the model
    offers its test window, one second of frames).
    """
    videos = [video for video in videos if len(video)]
    folds = held_out_parts(videos, max_folds)
    kinds = applicable_kinds(videos)
    scores = ValidationScores(folds, kinds, seed=seed)
    fits: list[HeldOutFits] = []
    specs: list[tuple[str, dict[str, Any]]] = []
    notes: list[str] = []

    def add(name: str, config: dict[str, Any]) -> int:
        fit = HeldOutFits(lambda: make_density(name, config), folds)
        if not fit.held_out:
            notes.append("one training part only: validation and calibration are in-sample")
        fits.append(fit)
        specs.append((name, config))
        scores.add(len(fits) - 1, fit)
        return len(fits) - 1

    def best_variant(name: str, variants: Sequence[dict[str, Any]], kinds_here: Sequence[str], step: str,
                     incumbent: int | None = None) -> int:
        """Validate each variant of one density on ``kinds_here``, list them, and return the best one's key.

        ``incumbent``, a key validated before on the same kinds, is the simplest candidate: the
        variants must beat it.
        """
        results = [] if incumbent is None else [(incumbent, validated[incumbent])]
        for variant in variants:
            key = add(name, dict(variant))
            validated[key] = CandidateResult([specs[key]], [fits[key].models[0].label],
                                             {kind: scores.auc([key], kind) for kind in kinds_here}, step)
            results.append((key, validated[key]))
            candidates.append(validated[key])
        best = _best([result for _, result in results])
        return next(key for key, result in results if result is best)

    candidates: list[CandidateResult] = []
    validated: dict[int, CandidateResult] = {}
    velocity = best_variant("velocity", [dict(variant, seed=seed) for variant in VELOCITY_VARIANTS], MOTION_KINDS,
                            "velocity variant")
    velocity = best_variant("velocity", [dict(specs[velocity][1], track_radius=radius)
                                         for radius in averaging_radii(track_radii)],
                            MOTION_KINDS, "velocity averaged along tracks", incumbent=velocity)
    speed = best_variant("speed", SPEED_VARIANTS, SPEED_KINDS, "speed variant")
    speed = best_variant("speed", [dict(specs[speed][1], track_radius=radius) for radius in averaging_radii(track_radii)],
                         SPEED_KINDS, "speed averaged along tracks", incumbent=speed)
    pool = [velocity, speed]
    class_fit = ClassRarity().fit(videos)
    if class_fit.informative:
        pool.append(best_variant("shape", [dict(variant, seed=seed) for variant in SHAPE_VARIANTS], SHAPE_KINDS,
                                 "shape variant"))
        pool.append(add("class", {}))
    else:
        pool.append(add("shape", {"seed": seed}))
        notes.append("class: the detector has one class column, so class rarity is left out")
    if all(video.appearance is not None for video in videos):
        pool.append(add("appearance", {"seed": seed}))
    pool.append(add("place", {}))
    pool.append(add("interaction", {"seed": seed}))

    combinations = []
    for rule in COMBINATIONS:
        for size in range(1 if rule == COMBINATIONS[0] else 2, len(pool) + 1):  # one attribute: every rule agrees
            for keys in itertools.combinations(pool, size):
                result = CandidateResult([specs[key] for key in keys], [fits[key].models[0].label for key in keys],
                                         {kind: scores.auc(list(keys), kind, combination=rule) for kind in kinds},
                                         "attributes", combination=rule)
                combinations.append((keys, result))
    candidates += [result for _, result in combinations]
    chosen_keys, chosen = next((keys, result) for keys, result in combinations
                               if result is _best([r for _, r in combinations]))

    smoothing = [chosen]
    for radius in sorted({int(radius) for radius in track_radii} - {0}):
        smoothing.append(CandidateResult(chosen.attributes, chosen.labels,
                                         {kind: scores.auc(list(chosen_keys), kind, radius, chosen.combination)
                                          for kind in kinds},
                                         f"track smoothing {radius}", track_radius=radius,
                                         combination=chosen.combination))
    candidates += smoothing[1:]
    chosen = _best(smoothing)
    motion_field = None
    if scores.has_cells and len(folds) > 1:
        kinds = [*kinds, MISSED]
        chosen, motion_field = _motion_field_step(scores, chosen, list(chosen_keys), kinds, videos, candidates)
    ensemble = AttributeEnsemble([specs[key] for key in chosen_keys], max_folds=max_folds,
                                 track_radius=chosen.track_radius, combination=chosen.combination)
    ensemble.fit(videos, held_out={position: fits[key] for position, key in enumerate(chosen_keys)})
    return Selection(ensemble, chosen, candidates, kinds, len(folds), sorted(set(notes)), scores, tuple(chosen_keys),
                     motion_field)


def _motion_field_step(scores: ValidationScores, chosen: CandidateResult, keys: list[int], kinds: Sequence[str],
                       videos: Sequence[ObjectAttributes], candidates: list[CandidateResult],
                       ) -> tuple[CandidateResult, CalibratedMotionField | None]:
    """Step 4: the chosen ensemble alone and with each motion field beside it, on every kind and ``missed``."""
    variants = [None] + [scores.add_motion_field(per_place) for per_place in (False, True)]
    results = [CandidateResult(chosen.attributes, chosen.labels,
                               {kind: scores.auc(keys, kind, chosen.track_radius, chosen.combination,
                                                 motion_field=variant) for kind in kinds},
                               "motion field", chosen.track_radius, chosen.combination, variant)
               for variant in variants]
    candidates += results
    best = _best(results)
    if best.motion_field is None:
        return best, None
    fold = scores.field_folds[best.motion_field][0]
    density = MotionFieldDensity(**fold.density.config()).fit(videos)
    return best, CalibratedMotionField(density, fold.low, fold.high)
