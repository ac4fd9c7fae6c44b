"""Augmentation building blocks and the TPS warp: one draw for all frames, masks exact and aligned."""
import numpy as np
import pytest
import torch
from PIL import Image

from dataset.augment import (
    MEAN_FILL,
    ColourJitter,
    Compose,
    PerFrame,
    RandomAffine,
    RandomCrop,
    RandomGrayscale,
    RandomHorizontalFlip,
    RandomResizedCrop,
    RandomTPS,
    ResizeShorter,
    to_sample,
)
from dataset.tps import fit_tps, remap, tps_maps
from util.preprocess import IMAGENET_MEAN, IMAGENET_STD

GEOMETRIC = {
    "flip": RandomHorizontalFlip(p=1.0),
    "affine": RandomAffine(degrees=20, scale=(0.9, 1.1), shear=10),
    "resize": ResizeShorter(48),
    "crop": RandomCrop(48),
    "resized_crop": RandomResizedCrop(48, scale=(0.36, 1.0), ratio=(0.75, 1.25)),
    "tps": RandomTPS(p=1.0),
}


def label_map() -> np.ndarray:
    """64x96 labels: object 1 a rectangle, object 3 a disc (labels need not be consecutive)."""
    labels = np.zeros((64, 96), np.uint8)
    labels[8:40, 10:50] = 1
    ys, xs = np.mgrid[0:64, 0:96]
    labels[(ys - 44) ** 2 + (xs - 70) ** 2 < 12 ** 2] = 3
    return labels


def textured_image(seed: int = 0) -> Image.Image:
    """A smooth random RGB image of the mask's size."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 256, (8, 12, 3), dtype=np.uint8)
    return Image.fromarray(coarse).resize((96, 64), Image.BICUBIC)


def mask_as_image(labels: np.ndarray) -> Image.Image:
    """The mask drawn as an RGB image: white objects on black (the fill colour is mid-grey)."""
    return Image.fromarray(np.repeat(((labels > 0) * 255).astype(np.uint8)[..., None], 3, axis=2))


@pytest.mark.parametrize("name", sorted(GEOMETRIC))
def test_geometric_transforms_keep_labels_exact_and_aligned(name):
    torch.manual_seed(1)
    labels = label_map()
    (image,), (mask,) = GEOMETRIC[name]([mask_as_image(labels)], [Image.fromarray(labels)])
    warped_labels = np.asarray(mask)
    assert set(np.unique(warped_labels)) <= {0, 1, 3}
    assert np.asarray(image).shape[:2] == warped_labels.shape
    # The image of the mask, thresholded above the mean fill, lands where the nearest-resampled mask does.
    agreement = ((np.asarray(image)[..., 0] > 180) == (warped_labels > 0)).mean()
    assert agreement > 0.97, agreement


@pytest.mark.parametrize("name", sorted(GEOMETRIC))
def test_one_draw_moves_all_frames_alike(name):
    torch.manual_seed(2)
    labels = Image.fromarray(label_map())
    images, masks = GEOMETRIC[name]([textured_image(0), textured_image(0)], [labels, labels])
    assert np.array_equal(np.asarray(images[0]), np.asarray(images[1]))
    assert np.array_equal(np.asarray(masks[0]), np.asarray(masks[1]))


def test_per_frame_draws_independently_and_compose_is_deterministic():
    step = PerFrame(Compose([RandomAffine(degrees=20, shear=10), ColourJitter(0.1, 0.05, 0.05)]))
    labels = Image.fromarray(label_map())
    torch.manual_seed(3)
    first, masks = step([textured_image()] * 3, [labels] * 3)
    assert not np.array_equal(np.asarray(first[0]), np.asarray(first[1]))
    assert not np.array_equal(np.asarray(masks[0]), np.asarray(masks[1]))
    torch.manual_seed(3)
    again, _ = step([textured_image()] * 3, [labels] * 3)
    assert all(np.array_equal(np.asarray(a), np.asarray(b)) for a, b in zip(first, again))


def test_per_frame_needs_one_mask_per_image():
    with pytest.raises(ValueError, match="one mask per image"):
        PerFrame(RandomHorizontalFlip())([textured_image()] * 2, [Image.fromarray(label_map())])


def test_one_draw_refuses_frames_of_different_sizes():
    with pytest.raises(ValueError, match="one size"):
        RandomAffine(degrees=10)([textured_image(), textured_image().resize((50, 40))], [])


def test_colour_transforms_change_images_only():
    torch.manual_seed(4)
    labels = Image.fromarray(label_map())
    images, masks = Compose([ColourJitter(0.5, 0.5, 0.5, 0.2), RandomGrayscale(p=1.0)])(
        [textured_image(), textured_image()], [labels])
    assert masks == [labels]
    pixels = np.asarray(images[0]).astype(int)
    assert np.array_equal(pixels, np.asarray(images[1]))
    assert (pixels[..., 0] == pixels[..., 1]).all() and (pixels[..., 1] == pixels[..., 2]).all()
    assert not np.array_equal(pixels, np.asarray(textured_image()))


def test_affine_fills_uncovered_pixels_with_the_mean_colour_and_background():
    torch.manual_seed(5)
    white = Image.new("RGB", (96, 64), (255, 255, 255))
    ones = Image.fromarray(np.ones((64, 96), np.uint8))
    (image,), (mask,) = RandomAffine(degrees=0, scale=(0.5, 0.5))([white], [ones])
    assert tuple(np.asarray(image)[0, 0]) == tuple(MEAN_FILL)
    assert np.asarray(mask)[0, 0] == 0 and np.asarray(mask)[32, 48] == 1


def test_tps_warps_the_image_and_keeps_the_mask_binary_and_aligned():
    torch.manual_seed(6)
    labels = (label_map() > 0).astype(np.uint8)
    images, masks = RandomTPS(p=1.0, points=12, scale=0.02)([textured_image(), mask_as_image(labels)],
                                                           [Image.fromarray(labels)])
    assert not np.array_equal(np.asarray(images[0]), np.asarray(textured_image()))
    warped = np.asarray(masks[0])
    assert set(np.unique(warped)) <= {0, 1} and not np.array_equal(warped, labels)
    assert ((np.asarray(images[1])[..., 0] > 180) == (warped > 0)).mean() > 0.98


def test_tps_with_probability_zero_changes_nothing():
    image, labels = textured_image(), Image.fromarray(label_map())
    assert RandomTPS(p=0.0)([image], [labels]) == ([image], [labels])


def test_tps_fit_interpolates_the_control_points_exactly():
    rng = np.random.default_rng(0)
    control = rng.random((12, 2))
    values = control + rng.normal(0, 0.02, (12, 2))
    coefficients = fit_tps(control, values)
    count = len(control)
    radial = ((control[:, None] - control[None]) ** 2).sum(-1)
    kernel = radial * np.log(np.where(radial > 0, radial, 1))
    evaluated = kernel @ coefficients[:count] + coefficients[count] + control @ coefficients[count + 1:]
    np.testing.assert_allclose(evaluated, values, atol=1e-9)


def test_tps_maps_send_moved_points_back_to_their_sources_and_are_identity_without_motion():
    source = np.array([[10, 10], [50, 20], [30, 50], [80, 40], [70, 12]], dtype=np.float64)
    target = source + np.array([[3, -2], [1, 1], [-2, 2], [0, 3], [2, 0]])
    map_x, map_y = tps_maps(source, target, (64, 96))
    for (sx, sy), (tx, ty) in zip(source, target):
        assert map_x[int(ty), int(tx)] == pytest.approx(sx, abs=1e-3)
        assert map_y[int(ty), int(tx)] == pytest.approx(sy, abs=1e-3)
    identity_x, identity_y = tps_maps(source, source, (64, 96))
    np.testing.assert_allclose(identity_x, np.tile(np.arange(96), (64, 1)), atol=1e-3)
    np.testing.assert_allclose(identity_y, np.tile(np.arange(64)[:, None], (1, 96)), atol=1e-3)
    labels = label_map()
    assert np.array_equal(remap(labels, (identity_x, identity_y), nearest=True, fill=(0,)), labels)


def test_to_sample_layout():
    labels = label_map()
    frames = [textured_image(i) for i in range(3)]
    masks = [Image.fromarray(labels)] * 3
    sample = to_sample(frames, masks, [3, 1], name="video", frames=["a.jpg", "b.jpg", "c.jpg"])
    assert sample["rgb"].shape == (3, 3, 64, 96) and sample["rgb"].dtype == torch.float32
    expected = (np.asarray(frames[0])[0, 0, 0] / 255 - IMAGENET_MEAN[0]) / IMAGENET_STD[0]
    assert sample["rgb"][0, 0, 0, 0].item() == pytest.approx(expected, abs=1e-5)
    assert torch.equal(sample["gt"][:, 0], torch.from_numpy(labels == 3).float().expand(3, -1, -1))
    assert torch.equal(sample["sec_gt"][:, 0], torch.from_numpy(labels == 1).float().expand(3, -1, -1))
    assert sample["selector"].tolist() == [1.0, 1.0]
    assert sample["info"] == {"name": "video", "frames": ["a.jpg", "b.jpg", "c.jpg"]}
    single = to_sample(frames, masks, [1], name="video", frames=["a.jpg"] * 3)
    assert single["selector"].tolist() == [1.0, 0.0] and single["sec_gt"].sum() == 0
    empty = to_sample(frames, masks, [], name="video", frames=["a.jpg"] * 3)
    assert empty["gt"].sum() == 0 and empty["gt"].shape == (3, 1, 64, 96)
