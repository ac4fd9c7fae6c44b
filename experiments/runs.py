"""Running the project's own entry points as a person would (train.py with its progress, eval_davis.py) and
scoring what they wrote: the reference parity, the trained and untrained networks, the copy-first baseline."""
import argparse
import json
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import torch

from experiments.recipe import SEED, eval_arguments
from inference.reference import deterministic_stcn, segment_reference_clip
from training.trainer import RunPaths
from util.imageio import DAVIS_PALETTE, read_indexed_png, write_indexed_png

ROOT = Path(__file__).resolve().parents[1]


def parity_step(reference_dir: Path) -> dict:
    """Segment the reference clip with the reference weights; return the agreement numbers."""
    start = time.perf_counter()
    net = deterministic_stcn()
    agreement = segment_reference_clip(net, reference_dir)
    agreement["seconds"] = time.perf_counter() - start
    return agreement


def run_parity(reference: Path) -> bool:
    print(f"[1] Parity with the authors' implementation ({reference})", flush=True)
    agreement = parity_step(reference)
    print(f"    clip: {agreement['frames']} frames, {agreement['objects']} objects, "
          f"{agreement['seconds']:.1f} s including model construction")
    print(f"    mean |prob - reference prob| = {agreement['mean_abs_diff']:.2e}   (tolerance 1e-4)")
    print(f"    pixels with the reference label = {100 * agreement['label_agreement']:.3f}%   (tolerance 99.9%)")
    ok = agreement["mean_abs_diff"] <= 1e-4 and agreement["label_agreement"] >= 0.999
    print("    PASS: same model as the reference" if ok else "    FAIL: outputs differ from the reference", flush=True)
    return ok


@dataclass
class TrainingRun:
    """What run_train reports: the weights to evaluate, the iteration reached, train.py's wall minutes and,
    if training was paused with a checkpoint to resume from, by what ("--stop_at" or "Ctrl-C")."""

    weights: Path
    iteration: int
    minutes: float
    paused: Optional[str] = None


def run_train(arguments: list[str], save_dir: Path, deadline_seconds: float) -> TrainingRun:
    """Run train.py (its progress bar shows); at the deadline, or on Ctrl-C or SIGTERM to this process,
    SIGTERM it (it saves a checkpoint and stops)."""
    start = time.perf_counter()
    # its own session: Ctrl-C reaches this process only, which asks train.py to stop (its DataLoader worker
    # would otherwise die of the SIGINT first and take the checkpoint with it)
    process = subprocess.Popen([sys.executable, str(ROOT / "train.py"), *arguments], cwd=ROOT,
                               stdout=subprocess.PIPE, text=True, start_new_session=True)
    lines = []
    reader = _LineReader(process.stdout, lines)
    past_deadline = interrupted = False
    previous_handler = signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        while process.poll() is None:
            if time.perf_counter() - start > deadline_seconds:
                print(f"\n    training is past its deadline ({deadline_seconds / 60:.1f} min): stopping it", flush=True)
                past_deadline = True
                process.send_signal(signal.SIGTERM)
                process.wait()
                break
            time.sleep(0.5)
    except KeyboardInterrupt:
        interrupted = True
        print("\n    interrupted: train.py saves a checkpoint and stops", flush=True)
        process.send_signal(signal.SIGTERM)
        process.wait()
    finally:
        signal.signal(signal.SIGTERM, previous_handler)
    reader.join()
    minutes = (time.perf_counter() - start) / 60
    if process.returncode != 0:
        happened = "was interrupted before it had a checkpoint" if interrupted else "failed"
        raise SystemExit(f"train.py {happened} (exit {process.returncode}):\n" + "".join(lines[-20:]))
    run = run_folder(save_dir)
    summary = json.loads(RunPaths(run, run.name).summary.read_text())
    iteration = summary["iteration"]
    weights = Path(summary["network"])
    if not weights.is_file():
        weights = Path(summary["checkpoint"])  # stopped at the deadline: the full checkpoint
    if past_deadline:
        print(f"    training cut at its deadline at iteration {iteration}: evaluating that checkpoint", flush=True)
        return TrainingRun(weights, iteration, minutes)
    paused = "Ctrl-C" if interrupted else "--stop_at" if summary["state"] == "stopped" else None
    return TrainingRun(weights, iteration, minutes, paused)


class _LineReader:
    """Echo a child's stdout lines, indented, while keeping them all."""

    def __init__(self, stream, lines: list) -> None:
        self.thread = threading.Thread(target=self._read, args=(stream, lines), daemon=True)
        self.thread.start()

    @staticmethod
    def _read(stream, lines: list) -> None:
        for line in stream:
            lines.append(line)
            print(f"    {line.rstrip()}", flush=True)

    def join(self) -> None:
        self.thread.join()


def run_folder(save_dir: Path) -> Path:
    """The newest run folder train.py wrote under `save_dir`."""
    runs = sorted(p for p in save_dir.iterdir() if p.is_dir())
    if not runs:
        raise SystemExit(f"train.py wrote no run folder under {save_dir}")
    return runs[-1]


def run_eval_davis(weights: Path, data: Path, output: Path, args: argparse.Namespace, zip_too: bool) -> dict:
    """eval_davis.py on the validation set (progress bars show); returns results.json and timing.json."""
    command = [sys.executable, str(ROOT / "eval_davis.py"), "--model", str(weights), "--davis_path", str(data),
               "--output", str(output), "--evaluate", *eval_arguments(args)] + (["--zip"] if zip_too else [])
    result = subprocess.run(command, cwd=ROOT, stdout=subprocess.PIPE, text=True)
    if result.returncode != 0:
        raise SystemExit(f"eval_davis.py failed (exit {result.returncode}):\n{result.stdout}")
    print("    " + result.stdout.splitlines()[0], flush=True)
    numbers = json.loads((output / "results.json").read_text())
    timing = json.loads((output / "timing.json").read_text())
    return {"jf": numbers["J&F-Mean"], "j": numbers["J-Mean"], "f": numbers["F-Mean"], "fps": timing["fps"]}


def evaluate_in_process(weights: Path, data: Path, output: Path, schedule) -> dict:
    """J&F, J and F of some weights (their recorded similarity) on the validation set with a memory
    schedule, without starting a process (for the learning curve and the ablation table)."""
    from inference.sources import davis_videos
    from model.checkpoint import load_network
    from training.validation import davis_jf

    cpu = torch.device("cpu")
    return davis_jf(load_network(weights, cpu), data, davis_videos(data, "val", 2017, "480p"), schedule, output, cpu)


def copy_first_mask(data: Path, output: Path) -> dict:
    """The baseline that copies the first frame's mask to every frame, scored like the others."""
    from util.metrics import evaluate_davis

    names = (data / "ImageSets" / "2017" / "val.txt").read_text().split()
    for name in names:
        masks = sorted((data / "Annotations" / "480p" / name).glob("*.png"))
        first, palette = read_indexed_png(masks[0])
        (output / name).mkdir(parents=True, exist_ok=True)
        for path in masks:
            write_indexed_png(output / name / path.name, first, palette or DAVIS_PALETTE)
    numbers = evaluate_davis(data, output, "val", 2017)
    return {"jf": numbers["J&F-Mean"], "j": numbers["J-Mean"], "f": numbers["F-Mean"]}


def untrained_weights(path: Path, seed: int = SEED) -> Path:
    """The network training starts from (train.py seeds torch with its seed, then builds STCN)."""
    from model.checkpoint import save_weights
    from model.network import STCN

    torch.manual_seed(seed)
    save_weights(STCN(single_object=False, pretrained=False), path)
    return path

