"""The benchmark scripts run end to end at a tiny size and print their tables (numbers are not judged)."""
import json

from eval_helpers import run_script


def test_inference_benchmark_prints_a_row_per_length(tmp_path):
    rows_file = tmp_path / "inference.json"
    result = run_script("scripts/benchmark_inference.py", "--lengths", "27", "28", "--objects", "1", "--size", "32",
                        "48", "--device", "cpu", "--json", rows_file)
    assert "FPS" in result.stdout and "GFLOP/s" in result.stdout
    rows = json.loads(rows_file.read_text())
    assert [(row["objects"], row["length"]) for row in rows] == [(1, 27), (1, 28)]
    for row in rows:
        assert row["fps"] > 0 and row["peak_mb"] > 0 and row["frame_gflop"] > 0
    assert rows[1]["bank_mb"] >= rows[0]["bank_mb"] > 0


def test_training_benchmark_prints_a_row_per_configuration(tmp_path):
    rows_file = tmp_path / "train.json"
    result = run_script("scripts/benchmark_train.py", "--batch_sizes", "1", "--crop_sizes", "64", "--iterations", "1",
                        "--num_workers", "0", "--device", "cpu", "--json", rows_file)
    assert "s/iter" in result.stdout
    (row,) = json.loads(rows_file.read_text())
    assert (row["batch"], row["crop"]) == (1, 64)
    assert row["total"] > 0 and row["peak_mb"] > 0
