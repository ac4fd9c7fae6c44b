"""The benchmark scripts run end to end at a tiny size and print their tables (numbers are not judged)."""
import json

import pytest
from eval_helpers import run_script

from experiments import inference_speed


def test_inference_benchmark_prints_a_row_per_length_and_architecture(tmp_path):
    rows_file = tmp_path / "inference.json"
    result = run_script("scripts/benchmark_inference.py", "--lengths", "27", "28", "--objects", "2", "--frame_size", "32",
                        "48", "--device", "cpu", "--arch", "stcn", "stm", "--json", rows_file)
    assert "FPS" in result.stdout and "GFLOP/s" in result.stdout
    assert "FPS STCN / STM, same frames, interleaved (paper: 20.2/10.2 = 1.98)" in result.stdout
    rows = json.loads(rows_file.read_text())
    assert [(row["arch"], row["objects"], row["length"]) for row in rows] == [
        ("stcn", 2, 27), ("stm", 2, 27), ("stcn", 2, 28), ("stm", 2, 28)]
    for row in rows:
        assert row["fps"] > 0 and row["peak_mb"] > 0 and row["frame_gflop"] > 0
    assert rows[2]["bank_mb"] >= rows[0]["bank_mb"] > 0
    # STM keeps a key per object: its memory bank is the larger (128-channel keys for each of 2 objects)
    assert rows[1]["bank_mb"] > rows[0]["bank_mb"]


def test_inference_benchmark_times_mixed_precision_beside_fp32(tmp_path):
    rows_file = tmp_path / "amp.json"
    result = run_script("scripts/benchmark_inference.py", "--lengths", "27", "--objects", "1", "--frame_size", "32", "48",
                        "--device", "cpu", "--amp", "--json", rows_file)
    assert "FPS STCN / STCN+AMP, same frames, interleaved" in result.stdout
    rows = json.loads(rows_file.read_text())
    assert [row["arch"] for row in rows] == ["stcn", "stcn+amp"] and all(row["fps"] > 0 for row in rows)


def test_training_benchmark_prints_a_row_per_configuration(tmp_path):
    rows_file = tmp_path / "train.json"
    result = run_script("scripts/benchmark_train.py", "--batch_sizes", "1", "--crop_sizes", "64", "--iterations", "1",
                        "--num_workers", "0", "--device", "cpu", "--arch", "stcn", "stm", "--json", rows_file)
    assert "s/iter" in result.stdout
    rows = json.loads(rows_file.read_text())
    assert [(row["arch"], row["batch"], row["crop"]) for row in rows] == [("stcn", 1, 64), ("stm", 1, 64)]
    for row in rows:
        assert row["total"] > 0 and row["peak_mb"] > 0


def test_training_benchmark_times_each_precision(tmp_path):
    rows_file = tmp_path / "precision.json"
    run_script("scripts/benchmark_train.py", "--batch_sizes", "1", "--crop_sizes", "64", "--iterations", "1",
               "--num_workers", "0", "--device", "cpu", "--precision", "fp32", "amp", "--json", rows_file)
    rows = json.loads(rows_file.read_text())
    assert [(row["arch"], row["precision"]) for row in rows] == [("stcn", "fp32"), ("stcn", "amp")]
    assert all(row["total"] > 0 for row in rows)


def test_training_benchmark_compares_variants_on_the_same_batches(tmp_path):
    rows_file = tmp_path / "compare.json"
    result = run_script("scripts/benchmark_train.py", "--batch_sizes", "2", "--crop_sizes", "64", "--iterations", "1",
                        "--num_workers", "0", "--device", "cpu", "--compare", "literal", "default", "channels_last",
                        "--json", rows_file)
    assert "speed-up: seconds per iteration of literal / of the variant" in result.stdout
    rows = json.loads(rows_file.read_text())
    assert [row["variant"] for row in rows] == ["literal", "default", "channels_last"]
    assert rows[0]["ratio"] == 1.0 and all(row["total"] > 0 for row in rows)
    # same initial weights and batch: the first step's loss agrees up to float rounding
    assert all(row["loss_difference"] < 1e-5 for row in rows)


def test_training_benchmark_rejects_an_unknown_variant():
    result = run_script("scripts/benchmark_train.py", "--compare", "default", "fast", check=False)
    assert result.returncode == 2 and "unknown variant 'fast'" in result.stderr


def test_inference_benchmark_compares_decoding_and_reports_agreement(tmp_path):
    rows_file = tmp_path / "decode.json"
    result = run_script("scripts/benchmark_inference.py", "--lengths", "28", "--objects", "2", "--frame_size", "64", "96",
                        "--device", "cpu", "--compare", "exact", "local", "local=1", "--object_scales", "0.5",
                        "--json", rows_file)
    assert "pixels labelled as by exact" in result.stdout
    rows = json.loads(rows_file.read_text())
    assert [row["arch"] for row in rows] == ["exact", "local", "local=1"]
    assert rows[0]["agreement"] == 1.0 and all(0.9 <= row["agreement"] <= 1.0 for row in rows)
    assert all(row["object_scale"] == 0.5 and 0 < row["object_coverage"] < 0.5 for row in rows)


def test_inference_benchmark_times_a_davis_layout_video_and_claims_no_speed_up_where_objects_are_lost(tmp_path):
    run_script("scripts/make_synthetic.py", "--layout", "davis", "--out", tmp_path / "davis", "--videos", "1",
               "--frames", "6", "--frame_size", "64", "96", "--objects", "2", "--seed", "3")
    video = next((tmp_path / "davis" / "JPEGImages" / "480p").iterdir())
    rows_file = tmp_path / "video.json"
    result = run_script("scripts/benchmark_inference.py", "--lengths", "27", "--video", video, "--device", "cpu",
                        "--compare", "exact", "local", "--json", rows_file)
    rows = json.loads(rows_file.read_text())
    assert [row["arch"] for row in rows] == ["exact", "local"]
    assert all(0 <= row["jf"] <= 1 and row["objects"] >= 1 for row in rows)
    assert not rows[0]["tracks"]  # random weights lose the objects: no speed-up is claimed
    assert "no claim: an object was lost" in result.stdout and "J&F" in result.stdout


def test_inference_benchmark_weights_per_architecture(tmp_path):
    stcn, stm = tmp_path / "a.pth", tmp_path / "b.pth"
    stcn.touch(), stm.touch()
    assert inference_speed.parse_weights([str(stcn)], ["stcn", "stm"]) == {"stcn": stcn, "stm": stcn}
    assert inference_speed.parse_weights([f"stcn={stcn}", f"stm={stm}"], ["stcn"]) == {"stcn": stcn, "stm": stm}
    with pytest.raises(ValueError, match="'xmem' is not an architecture"):
        inference_speed.parse_weights([f"xmem={stm}"], ["stcn"])
    result = run_script("scripts/benchmark_inference.py", "--model", f"stm={tmp_path / 'missing.pth'}", check=False)
    assert result.returncode == 2 and "missing.pth: no such file" in result.stderr
    old_name = run_script("scripts/benchmark_inference.py", "--weights", tmp_path / "missing.pth", check=False)
    assert old_name.returncode == 2 and "--weights is now --model" in old_name.stderr
