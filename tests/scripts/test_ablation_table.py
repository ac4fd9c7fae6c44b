"""scripts/ablation_table.py: the four Table 1 networks over two seeds at a tiny budget, its files, and
continuing a stopped run; the statistics on made-up results."""
import csv
import importlib.util
import json
import math

import pytest
from eval_helpers import ROOT, run_script

TINY = ["--iterations", "1", "--seeds", "2", "--size", "32", "48", "--val_videos", "2", "--val_frames", "6",
        "--train_frames", "5", "--objects", "2", "--batch", "1", "--warmup", "1"]


@pytest.fixture
def table(monkeypatch):
    """scripts/ablation_table.py as a module; its folder on the path, as when Python runs it (it imports demo)."""
    monkeypatch.syspath_prepend(str(ROOT / "scripts"))
    spec = importlib.util.spec_from_file_location("ablation_table", ROOT / "scripts" / "ablation_table.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


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


def test_summary_statistics_and_verdicts(table):
    module = table
    results = []
    for seed, (last, only) in enumerate([(0.5, 0.4), (0.6, 0.48)]):
        for arch, similarity in module.NETWORKS:
            results.append({"arch": arch, "similarity": similarity, "seed": seed, "iterations": 10,
                            "every5_last": {"jf": last, "j": last, "f": last},
                            "every5": {"jf": only, "j": only, "f": only}})
    rows = module.summarise(results)
    first = rows[0]
    assert first["jf_mean"] == pytest.approx(0.55) and first["jf_std"] == pytest.approx(math.sqrt(0.005))
    effect, error, seeds = module.schedule_effect(results, "stm", "dot")
    assert (effect, seeds) == (pytest.approx(-0.11), 2) and error == pytest.approx(0.01)
    assert module.verdict(effect, error, -1) == "reproduced"
    assert module.verdict(effect, error, +1).startswith("the opposite")
    assert module.verdict(0.01, 0.01, +1).startswith("within the noise")
    assert module.verdict(0.05, math.nan, +1).startswith("one seed")
    single = module.summarise(results[:4])
    assert math.isnan(single[0]["jf_std"])


def test_the_budget_probe_times_the_recipe(table, tmp_path):
    """With --minutes the table times each architecture's training step to give all the same iterations."""
    args = table.parse_args(["--out", str(tmp_path), "--minutes", "1", "--size", "32", "48", "--train_frames", "5",
                             "--batch", "1"])
    seconds = table.seconds_per_iteration(table.train_arguments(args, 3, 10, tmp_path, 10), steps=1)
    assert 0 < seconds < 60
