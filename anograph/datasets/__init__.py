"""Dataset loaders by name: the paper's benchmarks, users' own folders, generated synthetic data.

Every loader returns a :class:`~anograph.datasets.base.Dataset` (train and test videos,
per-frame test labels, frame rate; for datasets annotated with boxes also each test
video's ``ground_truth_regions``), so the pipeline does not care where videos came from.

=============  ==========================================================================
name           root
=============  ==========================================================================
ucsd-ped1      folder holding ``UCSDped1/`` (or that folder itself), official layout
ucsd-ped2      folder holding ``UCSDped2/`` (or that folder itself), official layout
avenue         CUHK Avenue, official layout (:mod:`anograph.datasets.avenue`)
shanghaitech   ShanghaiTech Campus, official layout (:mod:`anograph.datasets.shanghaitech`)
street-scene   Street Scene, MERL layout (:mod:`anograph.datasets.street_scene`)
adoc           ADOC, a documented conversion layout (:mod:`anograph.datasets.adoc`)
folder         ``ROOT/train/``, ``ROOT/test/``, optional ``ROOT/labels.csv``
synthetic      a folder written by :func:`generate_synthetic_dataset` (folder layout)
=============  ==========================================================================

Variants carry their option in the name, so one string identifies the experiment
everywhere (report, model key, Prefect artifact): ``shanghaitech-01`` ... ``shanghaitech-13``
is one ShanghaiTech scene, ``adoc-day`` / ``adoc-night`` one ADOC period (``adoc`` is both).
:func:`dataset_variant` builds these names from the options.
"""

from __future__ import annotations

import re
from pathlib import Path

from anograph.datasets.adoc import ADOC_SPLITS, load_adoc
from anograph.datasets.avenue import load_avenue
from anograph.datasets.base import REGION_COLUMNS, Dataset, VideoRef
from anograph.datasets.folder import load_folder_dataset
from anograph.datasets.shanghaitech import load_shanghaitech
from anograph.datasets.street_scene import load_street_scene
from anograph.datasets.synthetic import SYNTHETIC_MANIFEST, generate_synthetic_dataset
from anograph.datasets.ucsd import UCSD_SUBSETS, load_ucsd
from anograph.errors import InputError

DATASETS = ("ucsd-ped1", "ucsd-ped2", "folder", "synthetic", "avenue", "shanghaitech", "street-scene", "adoc")

_VARIANT = re.compile(r"^(?P<base>shanghaitech|adoc)-(?P<option>.+)$")

__all__ = [
    "DATASETS",
    "REGION_COLUMNS",
    "Dataset",
    "VideoRef",
    "dataset_variant",
    "generate_synthetic_dataset",
    "load_dataset",
]


def dataset_variant(name: str, scene: str | None = None, adoc_split: str | None = None) -> str:
    """The dataset name that selects one experiment, e.g. ``shanghaitech-01`` or ``adoc-night``.

    Parameters
    ----------
    name:
        A name from :data:`DATASETS`.
    scene:
        ShanghaiTech only: one scene (``"01"`` ... ``"13"``); ``None`` (default) pools all 13.
    adoc_split:
        ADOC only: ``"day"``, ``"night"`` or ``"all"``; ``None`` (default) means ``"all"``.

    Raises
    ------
    InputError
        An option given for a dataset that has no such option.
    """
    if scene is not None and name != "shanghaitech":
        raise InputError(None, f"a scene can only be chosen for shanghaitech, not {name!r}")
    if adoc_split is not None and name != "adoc":
        raise InputError(None, f"a day/night split can only be chosen for adoc, not {name!r}")
    if scene is not None:
        return f"{name}-{scene}"
    if adoc_split is not None and adoc_split != "all":
        return f"{name}-{adoc_split}"
    return name


def load_dataset(
    name: str,
    root: str | Path,
    fps: float | None = None,
    *,
    scene: str | None = None,
    adoc_split: str | None = None,
) -> Dataset:
    """Load a dataset by name.

    Parameters
    ----------
    name:
        One of :data:`DATASETS`, or a variant name such as ``shanghaitech-01`` or
        ``adoc-day`` (see the module docstring).
    root:
        The dataset's folder (see the module docstring for what each name expects).
    fps:
        Frame rate where the data does not say: for ``folder`` / ``synthetic`` it
        applies to frame folders only (containers know their rate); for the benchmarks it
        replaces the dataset's own rate (UCSD 10, Avenue 25, Street Scene 15, ADOC 3 fps;
        ShanghaiTech: its training videos' rate). Default ``None``.
    scene, adoc_split:
        Options of :func:`dataset_variant`, as an alternative to a variant name.

    Raises
    ------
    InputError
        Unknown name, missing folder, or anything the loader rejects.
    """
    name = dataset_variant(name, scene=scene, adoc_split=adoc_split)
    variant = _VARIANT.match(name)
    base, option = (variant.group("base"), variant.group("option")) if variant else (name, None)
    if base not in DATASETS:
        raise InputError(None, f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}")
    if base == "adoc" and option not in (None, *ADOC_SPLITS[:2]):
        raise InputError(None, f"unknown dataset {name!r}; ADOC variants are adoc-day and adoc-night")
    root = Path(root)
    if not root.is_dir():
        raise InputError(root, "no such folder")
    if base in UCSD_SUBSETS:
        return load_ucsd(root, subset=UCSD_SUBSETS[base], fps=fps)
    if base == "avenue":
        return load_avenue(root, fps=fps)
    if base == "shanghaitech":
        return load_shanghaitech(root, scene=option, fps=fps)
    if base == "street-scene":
        return load_street_scene(root, fps=fps)
    if base == "adoc":
        return load_adoc(root, split=option or "all", fps=fps)
    if base == "synthetic":
        if not (root / SYNTHETIC_MANIFEST).is_file():
            raise InputError(
                root,
                f"not a generated synthetic dataset (no {SYNTHETIC_MANIFEST}); generate one with "
                "anograph.datasets.generate_synthetic_dataset, or load your own videos as 'folder'",
            )
        return load_folder_dataset(root, fps=fps, name="synthetic")
    return load_folder_dataset(root, fps=fps, name="folder")
