"""The output folder is checked (and created) before any work: files, paths below files, unwritable folders."""

from __future__ import annotations

import os

import pytest

from anograph.errors import InputError
from anograph.io.output_folder import prepare_output_folder


def test_a_new_nested_folder_is_created_and_an_existing_one_kept(tmp_path):
    made = prepare_output_folder(tmp_path / "a" / "b")
    assert made == (tmp_path / "a" / "b").resolve() and made.is_dir()
    (made / "keep.txt").write_text("x")
    assert prepare_output_folder(made) == made and (made / "keep.txt").exists()
    assert [path.name for path in made.iterdir()] == ["keep.txt"]  # the write probe is gone


def test_an_existing_file_is_refused_and_left_alone(tmp_path):
    target = tmp_path / "passwd"
    target.write_text("root:x:0:0")
    with pytest.raises(InputError, match="is an existing file") as caught:
        prepare_output_folder(target)
    assert caught.value.path == str(target)
    assert target.read_text() == "root:x:0:0"


def test_a_path_below_a_file_is_refused(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(InputError, match="cannot be created below it") as caught:
        prepare_output_folder(tmp_path / "file" / "out")
    assert caught.value.path == str(tmp_path / "file")


def test_a_folder_that_cannot_be_created_is_refused():
    with pytest.raises(InputError, match="not writable") as caught:
        prepare_output_folder("/proc/anograph-out")  # procfs refuses new folders, even to root
    assert caught.value.path == "/proc/anograph-out"


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes to read-only folders; covered by the /proc case")
def test_a_read_only_folder_is_refused(tmp_path):
    folder = tmp_path / "read-only"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        with pytest.raises(InputError, match="not writable"):
            prepare_output_folder(folder)
    finally:
        folder.chmod(0o700)
