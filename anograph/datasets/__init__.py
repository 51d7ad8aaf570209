"""Dataset loaders by name: UCSD Ped1/Ped2, users' own folders, generated synthetic data.

Every loader returns a :class:`~anograph.datasets.base.Dataset` (train and test videos,
per-frame test labels, frame rate), so the pipeline does not care where videos came from.

=============  ==========================================================================
name           root
=============  ==========================================================================
ucsd-ped1      folder holding ``UCSDped1/`` (or that folder itself), official layout
ucsd-ped2      folder holding ``UCSDped2/`` (or that folder itself), official layout
folder         ``ROOT/train/``, ``ROOT/test/``, optional ``ROOT/labels.csv``
synthetic      a folder written by :func:`generate_synthetic_dataset` (folder layout)
=============  ==========================================================================
"""

from __future__ import annotations

from pathlib import Path

from anograph.datasets.base import Dataset, VideoRef
from anograph.datasets.folder import load_folder_dataset
from anograph.datasets.synthetic import SYNTHETIC_MANIFEST, generate_synthetic_dataset
from anograph.datasets.ucsd import UCSD_SUBSETS, load_ucsd
from anograph.errors import InputError

DATASETS = ("ucsd-ped1", "ucsd-ped2", "folder", "synthetic")

__all__ = ["DATASETS", "Dataset", "VideoRef", "generate_synthetic_dataset", "load_dataset"]


def load_dataset(name: str, root: str | Path, fps: float | None = None) -> Dataset:
    """Load a dataset by name.

    Parameters
    ----------
    name:
        One of :data:`DATASETS`.
    root:
        The dataset's folder (see the module docstring for what each name expects).
    fps:
        Frame rate where the data does not say: for ``folder`` / ``synthetic`` it
        applies to frame folders only (containers know their rate); for UCSD it replaces
        the dataset's 10 fps. Default ``None``.

    Raises
    ------
    InputError
        Unknown name, missing folder, or anything the loader rejects.
    """
    if name not in DATASETS:
        raise InputError(None, f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}")
    root = Path(root)
    if not root.is_dir():
        raise InputError(root, "no such folder")
    if name in UCSD_SUBSETS:
        return load_ucsd(root, subset=UCSD_SUBSETS[name], fps=fps)
    if name == "synthetic":
        if not (root / SYNTHETIC_MANIFEST).is_file():
            raise InputError(
                root,
                f"not a generated synthetic dataset (no {SYNTHETIC_MANIFEST}); generate one with "
                "anograph.datasets.generate_synthetic_dataset, or load your own videos as 'folder'",
            )
        return load_folder_dataset(root, fps=fps, name="synthetic")
    return load_folder_dataset(root, fps=fps, name="folder")
