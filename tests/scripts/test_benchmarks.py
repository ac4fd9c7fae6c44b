"""The benchmark scripts run end to end at a tiny size and print their tables (numbers are not judged)."""
import json

from eval_helpers import run_script


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
