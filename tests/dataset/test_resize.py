"""dataset/resize.py: the sizes training sets are resized to, and an output inside an input refused."""
import pytest

from dataset.resize import fitted_size, resize_static, resize_youtube, run_parallel, shorter_side_size
from util.fileio import InputError


def test_sizes():
    assert fitted_size(1024, 768, 512) == (512, 384) and fitted_size(300, 200, 512) == (300, 200)  # never enlarged
    assert fitted_size(5000, 3, 512) == (512, 1)
    assert shorter_side_size(1280, 720, 480) == (853, 480) and shorter_side_size(720, 1280, 480) == (480, 853)


def test_an_output_inside_an_input_is_refused(tmp_path):
    with pytest.raises(InputError, match="must not be an input folder or inside one"):
        resize_static(tmp_path, tmp_path, tmp_path / "small", ".jpg", ".png", 512, 1)
    with pytest.raises(InputError, match="must not be --in or inside it"):
        resize_youtube(tmp_path, tmp_path / "train_480p", 480, 1)
    assert not (tmp_path / "small").exists() and not (tmp_path / "train_480p").exists()


def test_jobs_run_in_order_inline_or_in_processes():
    assert run_parallel(abs, [-3, 1, -2], 1, "inline") == [3, 1, 2]
    assert run_parallel(abs, [-3, 1, -2], 2, "processes", chunksize=2) == [3, 1, 2]
