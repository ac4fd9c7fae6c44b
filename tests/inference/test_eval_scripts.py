"""eval_davis.py, eval_youtube.py and eval_generic.py end to end on generated data."""
import json
import shutil
import zipfile

import numpy as np
import torch
from eval_helpers import run_script
from PIL import Image

from util.imageio import read_indexed_png, write_indexed_png


def _sequences(davis_root):
    return (davis_root / "trainval" / "ImageSets" / "2017" / "val.txt").read_text().split()


def test_davis_2017_writes_every_frame_zip_timing_and_jf(davis_root, weights, tmp_path):
    out = tmp_path / "d17"
    result = run_script("eval_davis.py", "--model", weights, "--davis_path", davis_root, "--output", out,
                        "--zip", "--evaluate")
    assert "FPS" in result.stdout and "J&F-Mean" in result.stdout
    for seq in _sequences(davis_root):
        annotations = davis_root / "trainval" / "Annotations" / "480p" / seq
        written = sorted(p.name for p in (out / seq).iterdir())
        assert written == sorted(p.name for p in annotations.iterdir())
        labels, palette = read_indexed_png(out / seq / "00003.png")
        first, gt_palette = read_indexed_png(annotations / "00000.png")
        assert labels.shape == (72, 100) and palette[:30] == gt_palette[:30]
        assert set(np.unique(labels)) <= set(np.unique(first))
        # frame 0 is the given mask
        assert np.array_equal(read_indexed_png(out / seq / "00000.png")[0], first)
    names = zipfile.ZipFile(out / "submission.zip").namelist()
    assert f"{_sequences(davis_root)[0]}/00000.png" in names and all(n.endswith(".png") for n in names)
    timing = json.loads((out / "timing.json").read_text())
    assert timing["frames"] == 6 * len(_sequences(davis_root)) and timing["fps"] > 0
    assert 0 <= json.loads((out / "results.json").read_text())["J&F-Mean"] <= 1


def test_davis_2016_merges_objects(davis_root, weights, tmp_path):
    out = tmp_path / "d16"
    run_script("eval_davis.py", "--model", weights, "--davis_path", davis_root, "--output", out, "--year", "2016",
               "--top", "0", "--mem_every", "2", "--include_last")
    names = (davis_root / "trainval" / "ImageSets" / "2016" / "val.txt").read_text().split()
    for seq in names:
        first = read_indexed_png(out / seq / "00000.png")[0]
        gt = read_indexed_png(davis_root / "trainval" / "Annotations" / "480p" / seq / "00000.png")[0]
        assert np.array_equal(first, (gt > 0).astype(np.uint8))
        for frame in (out / seq).iterdir():
            assert set(np.unique(read_indexed_png(frame)[0])) <= {0, 1}


def _as_released_2016(davis_root, out):
    """The DAVIS 2017 synthetic set re-written as DAVIS 2016 is released: the same frames, every mask's
    objects merged into a grey 0/255 PNG, ImageSets/480p/val.txt with an image and a mask path per frame."""
    source = davis_root / "trainval"
    names = (source / "ImageSets" / "2016" / "val.txt").read_text().split()
    lines = []
    for name in names:
        shutil.copytree(source / "JPEGImages" / "480p" / name, out / "JPEGImages" / "480p" / name)
        (out / "Annotations" / "480p" / name).mkdir(parents=True)
        for mask in sorted((source / "Annotations" / "480p" / name).glob("*.png")):
            merged = (read_indexed_png(mask)[0] > 0).astype(np.uint8) * 255
            Image.fromarray(merged, mode="L").save(out / "Annotations" / "480p" / name / mask.name)
            lines.append(f"/JPEGImages/480p/{name}/{mask.stem}.jpg /Annotations/480p/{name}/{mask.name}")
    (out / "ImageSets" / "480p").mkdir(parents=True)
    (out / "ImageSets" / "480p" / "val.txt").write_text("\n".join(lines) + "\n")
    return names


def test_davis_2016_as_released_gives_the_masks_and_numbers_of_the_2017_route(davis_root, weights, tmp_path):
    released = tmp_path / "DAVIS" / "2016"
    names = _as_released_2016(davis_root, released)
    runs = {}
    for route, root in (("released", released), ("merged_2017", davis_root)):
        out = tmp_path / route
        result = run_script("eval_davis.py", "--model", weights, "--davis_path", root, "--output", out,
                            "--year", "2016", "--evaluate")
        assert "Global results for val" in result.stdout
        runs[route] = (out, json.loads((out / "results.json").read_text()))
    assert runs["released"][1]["J&F-Mean"] == runs["merged_2017"][1]["J&F-Mean"]
    for name in names:
        frames = sorted((runs["released"][0] / name).glob("*.png"))
        assert len(frames) == len(list((released / "JPEGImages" / "480p" / name).iterdir()))
        for frame in frames:
            assert np.array_equal(read_indexed_png(frame)[0], read_indexed_png(runs["merged_2017"][0] / name / frame.name)[0])
    # the ground truth alone, through scripts/evaluate_davis.py: results as the authors write them (0/255 grey)
    perfect = tmp_path / "perfect"
    shutil.copytree(released / "Annotations" / "480p", perfect)
    done = run_script("scripts/evaluate_davis.py", "--davis_path", released, "--results", perfect, "--year", "2016")
    assert json.loads((perfect / "results.json").read_text())["J&F-Mean"] == 1.0, done.stdout


def test_full_resolution_is_processed_at_480_written_and_evaluated_at_full_size(davis_root, weights, tmp_path):
    root = tmp_path / "DAVIS" / "2017" / "trainval"
    shutil.copytree(davis_root / "trainval", root)
    for kind in ("JPEGImages", "Annotations"):  # a full-resolution level twice the size of the 480p one
        for path in sorted((root / kind / "480p").rglob("*.*")):
            target = root / kind / "Full-Resolution" / path.relative_to(root / kind / "480p")
            target.parent.mkdir(parents=True, exist_ok=True)
            with Image.open(path) as image:
                resample = Image.NEAREST if kind == "Annotations" else Image.BICUBIC
                image.resize((image.width * 2, image.height * 2), resample).save(target)
    out = tmp_path / "full"
    result = run_script("eval_davis.py", "--model", weights, "--davis_path", root.parent, "--output", out,
                        "--resolution", "full", "--evaluate")
    assert "processed at a shorter side of 480" in result.stdout and "Global results for val" in result.stdout
    for name in _sequences(davis_root):
        with Image.open(root / "Annotations" / "Full-Resolution" / name / "00000.png") as truth:
            size = truth.size
        for frame in (out / name).iterdir():
            with Image.open(frame) as mask:
                assert mask.size == size
    assert 0 <= json.loads((out / "results.json").read_text())["J&F-Mean"] <= 1


def test_youtube_writes_asked_frames_with_original_ids_and_zip(youtube_root, weights, tmp_path):
    out = tmp_path / "yv"
    run_script("eval_youtube.py", "--model", weights, "--yv_path", youtube_root, "--output", out, "--size", "48")
    meta = json.loads((youtube_root / "valid" / "meta.json").read_text())["videos"]
    zipped = set(zipfile.ZipFile(out / "submission.zip").namelist())
    for name, video in meta.items():
        asked = sorted({f for obj in video["objects"].values() for f in obj["frames"]})
        assert sorted(p.stem for p in (out / "Annotations" / name).iterdir()) == asked
        assert {f"Annotations/{name}/{f}.png" for f in asked} <= zipped
        ids = {int(i) for i in video["objects"]}
        for annotation in (youtube_root / "valid" / "Annotations" / name).iterdir():
            given = read_indexed_png(annotation)[0]
            output = read_indexed_png(out / "Annotations" / name / annotation.name)[0]
            assert output.shape == given.shape == (64, 112)
            assert set(np.unique(output)) - {0} <= ids
            new = given > 0  # the given mask takes over its pixels (up to resizing at the borders)
            assert (output[new] == given[new]).mean() > 0.9


def test_youtube_output_all_writes_every_frame(youtube_root, weights, tmp_path):
    out = tmp_path / "yv_all"
    run_script("eval_youtube.py", "--model", weights, "--yv_path", youtube_root, "--output", out, "--output_all",
               "--size", "48")
    for video in (youtube_root / "all_frames" / "valid_all_frames" / "JPEGImages").iterdir():
        assert len(list((out / "Annotations" / video.name).iterdir())) == 12


def test_generic_folder_reproduces_the_reference_clip(reference_dir, weights, tmp_path):
    clip = np.load(reference_dir / "inference_2obj.npz")
    data = tmp_path / "mine"
    for t, frame in enumerate(clip["frames"]):  # lossless frames: the output must equal the reference's
        (data / "JPEGImages" / "clip").mkdir(parents=True, exist_ok=True)
        Image.fromarray(frame).save(data / "JPEGImages" / "clip" / f"{t:05d}.png")
    write_indexed_png(data / "Annotations" / "clip" / "00000.png", clip["first_mask"])
    out = tmp_path / "out"
    run_script("eval_generic.py", "--model", weights, "--data_path", data, "--output", out, "--overlay")
    labels = np.stack([read_indexed_png(out / "clip" / f"{t:05d}.png")[0] for t in range(10)])
    assert (labels == clip["expected_labels"]).mean() >= 0.999
    assert (out / "clip_overlay.mp4").stat().st_size > 0


def test_generic_folder_with_every_frame_annotated_gives_eval_davis_masks(davis_root, weights, tmp_path):
    """DAVIS trainval as downloaded has a mask for every frame: a later mask brings in only new objects (none
    here), so the folder gives the masks eval_davis.py propagates from the first frame."""
    run_script("eval_davis.py", "--model", weights, "--davis_path", davis_root, "--output", tmp_path / "davis")
    run_script("eval_generic.py", "--model", weights, "--data_path", davis_root / "trainval", "--output",
               tmp_path / "generic")
    for seq in _sequences(davis_root):
        for frame in sorted((tmp_path / "davis" / seq).iterdir()):
            np.testing.assert_array_equal(read_indexed_png(tmp_path / "generic" / seq / frame.name)[0],
                                          read_indexed_png(frame)[0], err_msg=f"{seq}/{frame.name}")


def test_generic_video_file_with_first_mask(reference_dir, weights, tmp_path):
    import cv2

    clip = np.load(reference_dir / "inference_2obj.npz")
    video = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"FFV1"), 10, (160, 96))  # lossless
    for frame in clip["frames"]:
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()
    mask = tmp_path / "first.png"
    write_indexed_png(mask, clip["first_mask"])
    out = tmp_path / "out"
    run_script("eval_generic.py", "--model", weights, "--video", video, "--mask", mask, "--output", out, "--overlay")
    assert len(list((out / "clip").glob("*.png"))) == 10
    assert (out / "clip_overlay.mp4").is_file()
    labels = np.stack([read_indexed_png(out / "clip" / f"{t:05d}.png")[0] for t in range(10)])
    assert (labels == clip["expected_labels"]).mean() >= 0.999


def _broken_copy(davis_root, tmp_path):
    root = tmp_path / "DAVIS" / "2017"
    shutil.copytree(davis_root, root)
    seq = _sequences(davis_root)[0]
    return root, seq, root / "trainval" / "Annotations" / "480p" / seq, root / "trainval" / "JPEGImages" / "480p" / seq


def _expect_failure(weights, root, tmp_path, fragment):
    out = tmp_path / "out"
    result = run_script("eval_davis.py", "--model", weights, "--davis_path", root, "--output", out, check=False)
    assert result.returncode == 2, result.stderr
    last_line = result.stderr.strip().splitlines()[-1]  # progress bars may come before it
    assert last_line.startswith("error: ") and fragment in last_line
    assert "Traceback" not in result.stderr
    leftovers = [p for p in out.rglob("*") if p.is_dir()] if out.exists() else []
    assert not [p for p in leftovers if p.name.startswith(".")], "temporary folders left behind"
    return out


def test_missing_first_frame_mask(davis_root, weights, tmp_path):
    root, _, annotations, _ = _broken_copy(davis_root, tmp_path)
    (annotations / "00000.png").unlink()
    _expect_failure(weights, root, tmp_path, str(annotations / "00000.png"))


def test_mask_and_image_sizes_differ(davis_root, weights, tmp_path):
    root, seq, annotations, _ = _broken_copy(davis_root, tmp_path)
    labels, palette = read_indexed_png(annotations / "00000.png")
    write_indexed_png(annotations / "00000.png", labels[:40], palette)
    out = _expect_failure(weights, root, tmp_path, "00000.png: mask is 100x40 but its frame is 100x72")
    assert not (out / seq).exists()


def test_rgb_mask_outside_the_palette_is_refused(davis_root, weights, tmp_path):
    root, _, annotations, _ = _broken_copy(davis_root, tmp_path)
    rgb = np.array(Image.open(annotations / "00000.png").convert("RGB"))
    rgb[0, 0] = (10, 200, 30)  # e.g. a mask painted by hand or saved through a lossy format
    Image.fromarray(rgb).save(annotations / "00000.png")
    _expect_failure(weights, root, tmp_path, "not an indexed (palette) PNG but an RGB mask with 1 colours")


def test_a_messy_copy_of_the_dataset_gives_the_same_masks(davis_root, weights, tmp_path):
    """Junk beside the frames and masks, the first masks re-saved as RGB, the list from Windows."""
    messy = tmp_path / "messy"
    shutil.copytree(davis_root / "trainval", messy)
    names = _sequences(davis_root)
    for name in names:
        for kind in ("JPEGImages", "Annotations"):
            folder = messy / kind / "480p" / name
            (folder / ".DS_Store").write_bytes(b"junk")
            (folder / "._00000.jpg").write_bytes(b"\x00\x05\x16\x07")
            (folder / "._00000.png").write_bytes(b"\x00\x05\x16\x07")
        first = messy / "Annotations" / "480p" / name / "00000.png"
        Image.open(first).convert("RGB").save(first)
    (messy / "JPEGImages" / "480p" / ".ipynb_checkpoints").mkdir()
    (messy / "ImageSets" / "2017" / "val.txt").write_bytes(("\ufeff" + "\r\n".join(names) + "\r\n").encode())
    outputs = {}
    for label, root in (("clean", davis_root), ("messy", messy)):
        outputs[label] = tmp_path / label
        run_script("eval_davis.py", "--model", weights, "--davis_path", root, "--output", outputs[label])
    for name in names:
        frames = sorted(p.name for p in (outputs["clean"] / name).iterdir())
        assert frames == sorted(p.name for p in (outputs["messy"] / name).iterdir())
        for frame in frames:
            assert np.array_equal(read_indexed_png(outputs["clean"] / name / frame)[0],
                                  read_indexed_png(outputs["messy"] / name / frame)[0])


def test_unreadable_image_leaves_no_half_written_sequence(davis_root, weights, tmp_path):
    root, seq, _, images = _broken_copy(davis_root, tmp_path)
    (images / "00004.jpg").write_bytes(b"not a jpeg")
    out = _expect_failure(weights, root, tmp_path, str(images / "00004.jpg"))
    assert not (out / seq).exists()


def test_empty_sequence(davis_root, weights, tmp_path):
    root, _, _, images = _broken_copy(davis_root, tmp_path)
    for frame in images.iterdir():
        frame.unlink()
    _expect_failure(weights, root, tmp_path, f"{images}: empty sequence")


def test_wrong_dataset_root(weights, tmp_path):
    _expect_failure(weights, tmp_path / "nowhere", tmp_path, str(tmp_path / "nowhere"))


def test_checkpoint_of_another_layout(davis_root, tmp_path):
    bad = tmp_path / "resnet.pth"
    torch.save({"conv1.weight": torch.zeros(1)}, bad)
    _expect_failure(bad, davis_root, tmp_path, f"{bad}: not a checkpoint of this network")


def test_amp_runs_in_bfloat16_on_the_cpu(reference_dir, weights, tmp_path):
    clip = np.load(reference_dir / "inference_2obj.npz")
    data = tmp_path / "mine"
    (data / "JPEGImages" / "clip").mkdir(parents=True)
    for t, frame in enumerate(clip["frames"][:4]):
        Image.fromarray(frame).save(data / "JPEGImages" / "clip" / f"{t:05d}.png")
    write_indexed_png(data / "Annotations" / "clip" / "00000.png", clip["first_mask"])
    out = tmp_path / "out"
    run_script("eval_generic.py", "--model", weights, "--data_path", data, "--output", out, "--amp", "--device", "cpu")
    labels = np.stack([read_indexed_png(out / "clip" / f"{t:05d}.png")[0] for t in range(4)])
    assert np.array_equal(labels[0], clip["first_mask"]) and set(np.unique(labels)) <= {0, 1, 2}


def test_amp_option_runs_the_network_in_bfloat16_with_fp32_probabilities(reference_dir, deterministic_stcn):
    from inference.core import InferenceCore
    from util.distributed import autocast
    from util.preprocess import normalise

    clip = np.load(reference_dir / "inference_2obj.npz")
    dtypes = []
    hook = deterministic_stcn.decoder.pred.register_forward_hook(lambda m, i, o: dtypes.append(o.dtype))
    try:
        core = InferenceCore(deterministic_stcn)
        with autocast(torch.device("cpu"), True):
            probs = [core.step(normalise(frame), clip["first_mask"] if t == 0 else None)
                     for t, frame in enumerate(clip["frames"][:3])]
    finally:
        hook.remove()
    assert dtypes and set(dtypes) == {torch.bfloat16}
    assert all(p.dtype == torch.float32 and torch.isfinite(p).all() for p in probs)


def test_evaluation_flags_that_make_no_sense_stop_at_once(davis_root, weights, tmp_path):
    for flag, value, message in (("--top", "-1", "--top -1: must be at least 0"),
                                 ("--mem_every", "0", "--mem_every 0: must be at least 1"),
                                 ("--max_mem_frames", "0", "--max_mem_frames 0: must be at least 1"),
                                 ("--size", "8", "--size 8: must be 0 (as stored) or at least 16")):
        out = tmp_path / flag.strip("-")
        result = run_script("eval_davis.py", "--model", weights, "--davis_path", davis_root, "--output", out,
                            flag, value, check=False)
        assert result.returncode == 2 and result.stderr.strip() == f"error: {message}", result.stderr
        assert not out.exists()


def test_an_output_that_is_a_file_stops_before_any_work(davis_root, weights, tmp_path):
    taken = tmp_path / "notes.txt"
    taken.write_text("mine")
    inside = taken / "d17"
    for output, message in ((taken, f"--output {taken}: is a file, not a folder"),
                            (inside, f"--output {inside}: cannot be made: {taken} is a file, not a folder")):
        result = run_script("eval_davis.py", "--model", weights, "--davis_path", davis_root, "--output", output,
                            check=False)
        assert result.returncode == 2 and result.stderr.strip() == f"error: {message}", result.stderr
    assert taken.read_text() == "mine" and sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


def test_paths_one_level_off(davis_root, weights, tmp_path):
    """The folder above DAVIS 2017 works as --davis_path; a folder given as --model is named as such."""
    out = tmp_path / "above"
    run_script("eval_davis.py", "--model", weights, "--davis_path", davis_root.parent, "--output", out)
    written = [p.name for p in out.iterdir() if p.is_dir() and p.name != ".complete"]  # and the finished-video records
    assert sorted(written) == sorted(_sequences(davis_root))
    result = run_script("eval_davis.py", "--model", weights.parent, "--davis_path", davis_root, "--output",
                        tmp_path / "folder", check=False)
    assert result.returncode == 2 and "a folder, not a checkpoint file" in result.stderr
