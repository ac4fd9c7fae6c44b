"""scripts/summarise_demos.py: the mean and spread of several demo runs, and the runs it refuses to average."""
import json
import statistics

from eval_helpers import run_script
from PIL import Image

VALIDATION = {"videos": 16, "frames": 20, "size": [96, 160], "max_objects": 3}


def _demo_folder(root, name, seed, jf, iterations=212, copy_first=0.257, validation=VALIDATION, lr="0.0002"):
    """A folder holding a demo_summary.json with the keys scripts/demo.py writes."""
    folder = root / name
    folder.mkdir()
    curve = [{"iteration": iterations // 2, "minutes": 9.0, "jf": jf / 2},
             {"iteration": iterations, "minutes": iterations * 5.0 / 60, "jf": jf}]
    summary = {"jf_trained": jf, "jf_untrained": 0.04, "jf_copy_first": copy_first, "fps": 6.8,
               "train_minutes": 20.0, "iterations": iterations,
               "j_f": {"trained": [jf - 0.01, jf + 0.01], "untrained": [0.05, 0.03], "copy_first": [0.28, 0.23]},
               "learning_curve": curve, "weights": "train/x.pth",
               "train_command": f"python train.py --stage 3 -i {iterations} --lr {lr} --save_dir /x/{name}/train "
                                f"--seed {seed} --device cpu",
               "eval_flags": "--mem_every 5 --top 20 --device cpu", "validation": validation}
    (folder / "demo_summary.json").write_text(json.dumps(summary))
    return folder


def test_three_seeds_give_their_mean_and_sample_spread(tmp_path):
    scores = {14159265: 0.625, -1: 0.58, 2: 0.66}
    folders = [_demo_folder(tmp_path, f"demo_s{seed}", seed, jf) for seed, jf in scores.items()]
    table = tmp_path / "spread.md"
    plot = tmp_path / "spread.png"
    result = run_script("scripts/summarise_demos.py", *folders, "--markdown", table, "--plot", plot)
    mean, spread = statistics.fmean(scores.values()), statistics.stdev(scores.values())
    summary_row = next(line for line in result.stdout.splitlines() if "mean ± sd (3 runs)" in line)
    assert f"**{mean:.3f} ± {spread:.3f}**" in summary_row
    assert "| 5.00 |" in result.stdout  # seconds per iteration: minutes of steps at the final iteration
    assert f"{mean / 2:.3f} / {mean:.3f}" in summary_row  # the mean learning curve
    assert f"smallest margin over copy-first is {min(scores.values()) - 0.257:+.3f}" in result.stdout
    assert "| demo_s-1 | -1 | 212 |" in result.stdout
    assert table.read_text() == result.stdout
    with Image.open(plot) as image:  # every seed's curve, their mean, copy-first
        assert image.format == "PNG" and image.size == (720, 440)
        assert len(image.convert("RGB").getcolors(maxcolors=100_000)) > 20  # lines, not a blank canvas


def test_runs_that_are_not_a_spread_are_refused(tmp_path):
    first = _demo_folder(tmp_path, "a", 1, 0.6)
    same_seed = _demo_folder(tmp_path, "b", 1, 0.62)
    result = run_script("scripts/summarise_demos.py", first, same_seed, check=False)
    assert result.returncode == 2 and "seed 1" in result.stderr and str(same_seed) in result.stderr
    other_set = _demo_folder(tmp_path, "c", 2, 0.6, validation=dict(VALIDATION, videos=8))
    result = run_script("scripts/summarise_demos.py", first, other_set, check=False)
    assert result.returncode == 2 and "another validation set" in result.stderr and str(other_set) in result.stderr
    other_lr = _demo_folder(tmp_path, "d", 3, 0.6, lr="0.0001")
    result = run_script("scripts/summarise_demos.py", first, other_lr, check=False)
    assert result.returncode == 2 and "another recipe" in result.stderr and "--lr 0.0001 against 0.0002" in result.stderr
    result = run_script("scripts/summarise_demos.py", first, tmp_path / "missing", check=False)
    assert result.returncode == 2 and result.stderr.strip().splitlines()[-1] == \
        f"error: argument runs: {tmp_path / 'missing'}: no such folder"
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "demo_summary.json").write_text("{\"jf_trained\": 0.5")
    result = run_script("scripts/summarise_demos.py", first, tmp_path / "broken", "--markdown", tmp_path / "t.md",
                        check=False)
    assert result.returncode == 2 and "broken/demo_summary.json: not a demo summary" in result.stderr
    assert not (tmp_path / "t.md").exists()
