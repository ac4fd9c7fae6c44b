"""scripts/ablation_table.py: the four Table 1 networks over two seeds at a tiny budget, its files, and
continuing a stopped run."""
import csv
import json

import pytest
from eval_helpers import run_script

TINY = ["--iterations", "1", "--seeds", "2", "--frame_size", "32", "48", "--val_videos", "2", "--val_frames", "6",
        "--train_frames", "5", "--objects", "2", "--batch", "1", "--warmup", "1"]


@pytest.mark.slow
def test_the_table_has_every_network_schedule_and_seed(tmp_path):
    out = tmp_path / "table"
    result = run_script("scripts/ablation_table.py", "--out", out, *TINY)
    with open(out / "table.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert [(r["arch"], r["similarity"], r["schedule"]) for r in rows] == [
        (arch, similarity, schedule) for arch, similarity in (("stm", "dot"), ("stm", "l2"), ("stcn", "dot"),
                                                              ("stcn", "l2"))
        for schedule in ("every5_last", "every5")]
    for row in rows:
        assert row["seeds"] == "2" and row["iterations"] == "1"
        assert 0 <= float(row["jf_mean"]) <= 1 and float(row["jf_std"]) >= 0
    with open(out / "runs.csv") as handle:
        runs = list(csv.DictReader(handle))
    assert len(runs) == 4 * 2 * 2 and len({r["seed"] for r in runs}) == 2
    for run in (out / "runs").iterdir():  # each network evaluated with the similarity it was trained with
        result_json = json.loads((run / "result.json").read_text())
        card = json.loads((out / (result_json["weights"] + ".json")).read_text())
        assert (card["arch"], card["similarity"]) == (result_json["arch"], result_json["similarity"])
    markdown = (out / "table.md").read_text()
    assert "| STCN + L2 |" in markdown and "0.854" in markdown and "over 2 seeds" in markdown
    assert markdown.count("dropping the last frame") == 4 and "Wall time" in markdown
    assert (out / "table.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "J&F" in result.stdout
    # started again: nothing is retrained
    before = {p: p.stat().st_mtime for p in out.rglob("result.json")}
    again = run_script("scripts/ablation_table.py", "--out", out, *TINY)
    assert {p: p.stat().st_mtime for p in out.rglob("result.json")} == before
    assert "stage 3" not in again.stderr  # no training progress bar
    # other settings in the same folder are refused
    other = run_script("scripts/ablation_table.py", "--out", out, *TINY[:-2], "--warmup", "5", check=False)
    assert other.returncode != 0 and "holds a run with other settings" in other.stderr
