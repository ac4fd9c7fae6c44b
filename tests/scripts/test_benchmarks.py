"""The benchmark scripts run end to end at a tiny size and print their tables (numbers are not judged)."""
import argparse
import importlib.util
import json

import pytest
from eval_helpers import ROOT, run_script


def test_inference_benchmark_prints_a_row_per_length_and_architecture(tmp_path):
    rows_file = tmp_path / "inference.json"
    result = run_script("scripts/benchmark_inference.py", "--lengths", "27", "28", "--objects", "2", "--size", "32",
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
    result = run_script("scripts/benchmark_inference.py", "--lengths", "27", "--objects", "1", "--size", "32", "48",
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
    result = run_script("scripts/benchmark_inference.py", "--lengths", "28", "--objects", "2", "--size", "64", "96",
                        "--device", "cpu", "--compare", "exact", "local", "local=1", "--object_scales", "0.5",
                        "--json", rows_file)
    assert "pixels labelled as by exact" in result.stdout
    rows = json.loads(rows_file.read_text())
    assert [row["arch"] for row in rows] == ["exact", "local", "local=1"]
    assert rows[0]["agreement"] == 1.0 and all(0.9 <= row["agreement"] <= 1.0 for row in rows)
    assert all(row["object_scale"] == 0.5 and 0 < row["object_coverage"] < 0.5 for row in rows)


def _inference_benchmark_module():
    spec = importlib.util.spec_from_file_location("benchmark_inference", ROOT / "scripts" / "benchmark_inference.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_inference_variants_name_the_architecture_decoding_and_precision():
    benchmark = _inference_benchmark_module()
    assert benchmark.parse_variant("stm+exact+amp") == {
        "arch": "stm", "exact_decode": True, "margin": benchmark.local_decode.MARGIN, "amp": True, "compile": False}
    # --exact_decode and the first --arch apply where a variant does not say otherwise
    assert benchmark.parse_variant("local=3", "stm", exact_decode=True) == {
        "arch": "stm", "exact_decode": False, "margin": 3, "amp": False, "compile": False}
    with pytest.raises(ValueError, match="unknown variant 'fast'"):
        benchmark.parse_variant("stcn+fast")
    shorthand = argparse.Namespace(compare=None, arch=["stcn", "stm"], amp=True)
    assert benchmark.variant_names(shorthand) == ["stcn", "stcn+amp", "stm", "stm+amp"]
