"""J and F on hand-made masks whose values are computed by hand, and the toolkit's per-object statistics."""
import math

import numpy as np
import pytest

from util.metrics import (
    VideoScore,
    boundary_map,
    boundary_measure,
    disk,
    evaluate_sequence,
    region_similarity,
    statistics,
)


def square(shift_x: int = 0, shift_y: int = 0, size: int = 100) -> np.ndarray:
    """A 20x20 square at rows/cols 40..59 of a 100x100 image, shifted."""
    mask = np.zeros((size, size), bool)
    mask[40 + shift_y:60 + shift_y, 40 + shift_x:60 + shift_x] = True
    return mask


def test_disk_matches_skimage_definition():
    assert disk(0).tolist() == [[1]]
    assert disk(1).tolist() == [[0, 1, 0], [1, 1, 1], [0, 1, 0]]
    assert disk(2).tolist() == [[0, 0, 1, 0, 0], [0, 1, 1, 1, 0], [1, 1, 1, 1, 1], [0, 1, 1, 1, 0], [0, 0, 1, 0, 0]]
    assert disk(2).dtype == np.uint8 and disk(8).shape == (17, 17)


def test_boundary_map_is_the_ring_of_non_uniform_2x2_blocks():
    mask = np.zeros((10, 10), bool)
    mask[3:7, 3:7] = True
    expected = np.zeros((10, 10), bool)
    expected[2:7, 2:7] = True  # a 2x2 block starting in rows/cols 2..6 straddles the edge...
    expected[3:6, 3:6] = False  # ...unless it lies fully inside
    assert np.array_equal(boundary_map(mask), expected)


def test_boundary_map_at_the_image_border():
    mask = np.ones((4, 5), bool)
    assert not boundary_map(mask).any()  # the last row/column only compare along the border
    mask[:, 2:] = False
    assert np.array_equal(np.flatnonzero(boundary_map(mask).any(axis=0)), [1])


def test_identical_masks():
    assert region_similarity(square(), square()) == 1.0
    assert boundary_measure(square(), square()) == 1.0


def test_empty_prediction_scores_zero():
    empty = np.zeros((100, 100), bool)
    assert region_similarity(square(), empty) == 0.0
    assert boundary_measure(square(), empty) == 0.0  # precision 1, recall 0
    assert boundary_measure(empty, square()) == 0.0  # precision 0, recall 1 (false positive object)


def test_object_absent_in_both_scores_one():
    empty = np.zeros((100, 100), bool)
    assert region_similarity(empty, empty) == 1.0
    assert boundary_measure(empty, empty) == 1.0


@pytest.mark.parametrize("shift, iou", [(2, 20 * 18 / (20 * 22)), (3, 20 * 17 / (20 * 23)), (30, 0.0)])
def test_shifted_square_iou(shift, iou):
    assert region_similarity(square(), square(shift)) == pytest.approx(iou)


def test_shifted_square_boundary_within_and_beyond_tolerance():
    # Tolerance: ceil(0.008 * hypot(100, 100)) = ceil(1.13) = 2 pixels.
    assert math.ceil(0.008 * math.hypot(100, 100)) == 2
    # Both boundaries are 21x21 rings of 80 pixels. Shifted by 2, every pixel has a partner within 2: F = 1.
    assert boundary_measure(square(), square(2)) == 1.0
    assert boundary_measure(square(), square(0, -2)) == 1.0
    # Shifted by 3 to the right: the whole left column of the ground-truth ring (21 px) and the right column
    # apart from the 2 pixels nearest each corner (15 px) are more than 2 px from the other ring, so recall
    # is (80 - 36) / 80 = 0.55 and, symmetrically, so is precision: F = 0.55.
    assert boundary_measure(square(), square(3)) == pytest.approx(0.55)
    # Far apart: nothing matches.
    assert boundary_measure(square(), square(30)) == 0.0


def test_boundary_tolerance_grows_with_the_image_diagonal():
    # 480x854 (DAVIS 480p): ceil(0.008 * 979.6) = 8 pixels, so a shift of 8 still matches everywhere.
    big = np.zeros((480, 854), bool)
    big[200:300, 300:450] = True
    assert boundary_measure(big, np.roll(big, 8, axis=1)) == 1.0
    assert boundary_measure(big, np.roll(big, 9, axis=1)) < 1.0


def test_void_pixels_are_ignored():
    gt = square()
    void = np.zeros_like(gt)
    void[:, 70:90] = True
    prediction = gt.copy()
    prediction[45:55, 72:88] = True  # a false positive entirely inside the void band
    assert region_similarity(gt, prediction) < 1.0 and boundary_measure(gt, prediction) < 1.0
    assert region_similarity(gt, prediction, void) == 1.0
    assert boundary_measure(gt, prediction, void) == 1.0
    # Void over half the object: only the other half counts (IoU of 10x20 predicted vs 10x20 visible = 1).
    void = np.zeros_like(gt)
    void[:, 50:] = True
    half = gt.copy()
    half[:, 50:] = False
    assert region_similarity(gt, half, void) == 1.0


def test_region_similarity_over_frames():
    gt = np.stack([square(), square(), np.zeros((100, 100), bool)])
    prediction = np.stack([square(), np.zeros((100, 100), bool), np.zeros((100, 100), bool)])
    assert region_similarity(gt, prediction).tolist() == [1.0, 0.0, 1.0]


def test_evaluate_sequence_object_missing_in_some_frames():
    # Object 1 is present on frames 0-1 and absent on 2-3 (and not predicted there), object 2 always missed.
    gt = np.zeros((4, 100, 100), np.uint8)
    gt[0][square()] = 1
    gt[1][square(2)] = 1
    gt[:, 5:15, 5:15] = 2
    prediction = np.zeros_like(gt)
    prediction[0][square()] = 1
    prediction[1][square()] = 1
    j_values, f_values = evaluate_sequence(gt, prediction, num_objects=2)
    assert j_values.shape == f_values.shape == (2, 4)
    assert j_values[0].tolist() == pytest.approx([1.0, 20 * 18 / (20 * 22), 1.0, 1.0])
    assert f_values[0].tolist() == [1.0, 1.0, 1.0, 1.0]
    assert j_values[1].tolist() == [0.0] * 4 and f_values[1].tolist() == [0.0] * 4


def test_evaluate_sequence_void_label_counts_as_background_like_the_toolkit():
    gt = np.zeros((1, 100, 100), np.uint8)
    gt[0][square()] = 1
    gt[0, :, 80:] = 255
    prediction = np.zeros_like(gt)
    prediction[0][square()] = 1
    j_values, f_values = evaluate_sequence(gt, prediction, num_objects=1)
    assert j_values.tolist() == [[1.0]] and f_values.tolist() == [[1.0]]
    prediction[0, 10:30, 85:95] = 1  # a false positive in the void band is a false positive
    j_values, _ = evaluate_sequence(gt, prediction, num_objects=1)
    assert j_values[0, 0] == pytest.approx(400 / (400 + 200))


def test_statistics_mean_recall_decay():
    # n = 8: bin edges round(linspace(1, 8, 5) + 1e-10) - 1 = [0, 2, 4, 5, 7]; first bin frames 0-2, last 5-7.
    values = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2])
    mean, recall, decay = statistics(values)
    assert mean == pytest.approx(0.55)
    assert recall == pytest.approx(0.5)  # 0.5 itself is not above 0.5
    assert decay == pytest.approx(0.8 - 0.3)


def test_statistics_small_and_constant_sequences():
    assert statistics(np.array([0.7])) == pytest.approx((0.7, 1.0, 0.0))
    # n = 3: edges round([1, 1.5, 2, 2.5, 3] + 1e-10) - 1 = [0, 1, 1, 2, 2] -> first bin frames 0-1, last frame 2.
    assert statistics(np.array([1.0, 0.0, 0.25])) == pytest.approx((1.25 / 3, 1 / 3, 0.5 - 0.25))
    assert statistics(np.ones(50)) == pytest.approx((1.0, 1.0, 0.0))


def test_statistics_decay_is_positive_when_quality_drops():
    values = np.linspace(1.0, 0.0, 40)
    assert statistics(values)[2] > 0.5
    assert statistics(values[::-1])[2] < -0.5


def _two_squares(shift: int = 0) -> np.ndarray:
    labels = np.zeros((40, 60), np.uint8)
    labels[5:15, 5 + shift:15 + shift] = 1
    labels[20:35, 30:45] = 2
    return labels


def test_video_score_streams_the_toolkits_jf_and_tells_a_lost_object():
    gt = np.stack([_two_squares(shift) for shift in range(6)])
    prediction = gt.copy()
    prediction[3:][prediction[3:] == 2] = 0  # object 2 lost from frame 3 on
    prediction[1] = _two_squares(2)  # object 1 a little off on frame 1
    score = VideoScore(2)
    for truth, predicted in zip(gt, prediction):
        score.add(truth, predicted)
    j_values, f_values = evaluate_sequence(gt, prediction, 2)
    assert score.jf() == pytest.approx(np.mean((j_values.mean(axis=1) + f_values.mean(axis=1)) / 2))
    assert score.found_shares() == [1.0, 0.5]  # object 1's J on frame 1 is 0.67: found
    assert not score.tracks()
    tracked = VideoScore(2)
    tracked.add(gt[0], gt[0])
    assert tracked.tracks() and tracked.jf() == 1.0


def test_video_score_an_object_found_on_too_few_pixels_is_not_found():
    gt = _two_squares()
    everywhere = np.ones_like(gt)  # an undecided network labelling the whole frame as object 1
    score = VideoScore(2)
    score.add(gt, everywhere)
    assert score.found_shares() == [0.0, 0.0] and not score.tracks()
