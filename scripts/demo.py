"""`make demo`: the codebase working end to end on this machine, with no dataset and no GPU.

  [1] parity: the network segments the reference clip as the authors' implementation does;
  [2] data: a synthetic validation set in the DAVIS layout (training draws a fresh synthetic video for
      every sample, so the training set is an endless stream: see dataset/synthetic_online.py);
  [3] training with train.py (stage 3 on fresh synthetic videos) for DEMO_MINUTES minutes (default 18),
      validated on the held-out set during training (train.py --val_root/--val_every);
  [4] evaluation with eval_davis.py: J&F of the trained network, of the same network untrained and of
      copying the first-frame mask to every frame; FPS; the submission zip;
  [5] pictures: an overlay GIF (prediction | ground truth) and the learning curve (the validation J&F
      during training against training minutes).

Everything goes to one folder (default demo_output/): data/, train/ (checkpoints and the TensorBoard log),
masks/ (the trained network's masks, submission.zip, timing.json, J&F CSVs), untrained/, copy_first/,
overlay.gif, learning_curve.png, demo_summary.json.

  python scripts/demo.py --out demo_2h --iterations 2800 --curve_points 12
      # the 2-hour recipe of docs/results.md (2 h of training at 2.5 s per iteration)
  python scripts/demo.py --out demo_2h --iterations 2800 --curve_points 12 --stop_at 1400   # a long run in two
  python scripts/demo.py --out demo_2h --iterations 2800 --curve_points 12 --resume          # parts (or Ctrl-C)
"""
import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import cv2
import numpy as np
import torch
from PIL import Image
from tqdm import tqdm

ROOT = Path(__file__).resolve().parents[1]

from dataset.sampling import FRAMES, MAX_TARGETS
from dataset.synthetic import generate_video, sample_rng
from inference.reference import DEFAULT_REFERENCE, deterministic_stcn, segment_reference_clip
from training.validation import read_history
from util.cli import flag_values, run_cli
from util.fileio import InputError, atomic_path
from util.imageio import DAVIS_PALETTE, read_image, read_indexed_png, write_indexed_png
from util.plots import learning_curve

DEFAULT_MINUTES = 18.0
DEMO_LR = 2e-4
DEMO_BATCH = 2
# glibc returns freed memory to the system and takes it back at every iteration, which costs page faults
# on a VM; keeping the heap made the demo's training step 4% faster here (6.7 against 7.0 s, one thread).
FAST_MALLOC = {"MALLOC_TRIM_THRESHOLD_": str(64 << 30), "MALLOC_TOP_PAD_": str(1 << 30),
               "MALLOC_MMAP_THRESHOLD_": str(32 << 20)}
SEED = 14159265  # train.py's default seed: the untrained network is the one training starts from
MAX_CURVE_POINTS = 12
PLAN_SHAPE = 1000  # with a budget: the schedule's shape (-i 1000 --steps 800), stretched by train.py to its plan


# ---- [1] parity -----------------------------------------------------------------------------------------
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


# ---- [2] data -------------------------------------------------------------------------------------------
def write_validation_set(root: Path, videos: int, frames: int, size: tuple[int, int], max_objects: int,
                         seed: int = 0) -> list[str]:
    """A DAVIS 2017-layout folder whose val list names every video (JPEG frames, palette PNG masks)."""
    names = [f"val-{i:03d}" for i in range(videos)]
    for i, name in enumerate(tqdm(names, desc="validation videos", unit="video")):
        video = generate_video(sample_rng(seed, i, "demo/val"), frames, size, max_objects)
        image_dir = root / "JPEGImages" / "480p" / name
        mask_dir = root / "Annotations" / "480p" / name
        image_dir.mkdir(parents=True, exist_ok=True)
        mask_dir.mkdir(parents=True, exist_ok=True)
        for t in range(frames):
            Image.fromarray(video.frames[t]).save(image_dir / f"{t:05d}.jpg", quality=95)
            write_indexed_png(mask_dir / f"{t:05d}.png", video.labels[t])
    for year in ("2016", "2017"):
        (root / "ImageSets" / year).mkdir(parents=True, exist_ok=True)
        (root / "ImageSets" / year / "val.txt").write_text("".join(f"{n}\n" for n in names))
    return names


# ---- [3] training ---------------------------------------------------------------------------------------
def train_arguments(args: argparse.Namespace, stage: int, iterations: int, save_dir: Path,
                    save_every: int, load: Optional[Path] = None, seed: int = SEED, run_id: str = "",
                    val_root: Optional[Path] = None, val_points: int = 0, minutes: Optional[float] = None) -> list[str]:
    """train.py's command line for one stage of the demo recipe: `iterations` (the schedule's shape when
    a budget of `minutes` is given; train.py plans the total), validated on `val_root` `val_points` times
    evenly and at the end, if given."""
    height, width = args.train_size or args.size
    command = [
        "--stage", str(stage), "--id", run_id or f"demo_s{stage}", "--synthetic", str(height), str(width), str(args.train_frames),
        "--no_pretrained", "-i", str(iterations), "--steps", str(max(1, round(0.8 * iterations))),
        "-b", str(args.batch), "--crop_size", str(args.crop), "--lr", str(args.lr), "--warmup", str(args.warmup),
        "--clip_grad", str(args.clip_grad), "--bootstrap_start", str(args.bootstrap_start),
        "--bootstrap_end", str(max(args.bootstrap_end, args.bootstrap_start + 1)), "--num_workers", str(args.num_workers),
        "--save_dir", str(save_dir), "--save_every", str(save_every), "--log_every", "10",
        "--log_image_every", "100", "--seed", str(seed), "--device", "cpu",
    ]
    if args.pool:
        command += ["--synthetic_pool", str(args.pool)]
    for flag, value, paper in (("--sample_frames", args.sample_frames, FRAMES),
                               ("--max_targets", args.max_targets, MAX_TARGETS), ("--max_jump", args.max_jump, 0)):
        if value != paper:
            command += [flag, str(value)]
    if args.cpu_amp:
        command.append("--cpu_amp")
    if load is not None:
        command += ["--load_network", str(load)]
    if val_root is not None:
        command += ["--val_root", str(val_root), "--val_points", str(val_points)]
    if minutes is not None:
        command += ["--minutes", f"{minutes:g}"]
    return command


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
    run = _run_folder(save_dir)
    last_lines = "".join(lines[-5:])
    done = re.search(r"at iteration (\d+)", last_lines)
    iteration = int(done.group(1)) if done else 0
    weights = run / f"{run.name}_{iteration}.pth"
    if not weights.is_file():
        weights = run / f"{run.name}_checkpoint.pth"  # stopped at the deadline: the full checkpoint
    if past_deadline:
        print(f"    training cut at its deadline at iteration {iteration}: evaluating that checkpoint", flush=True)
        return TrainingRun(weights, iteration, minutes)
    paused = "Ctrl-C" if interrupted else "--stop_at" if "stopped (resume with --resume)" in last_lines else None
    return TrainingRun(weights, iteration, minutes, paused)


# ---- --stop_at / --resume: a run in parts -----------------------------------------------------------------
RECIPE_FILE = "demo_recipe.json"  # the flags a run was started with, and the training minutes of its parts


def demo_recipe(args: argparse.Namespace, arguments: list[str]) -> dict:
    """Everything that makes two parts of a run the same run: train.py's arguments, the validation set and
    the evaluation flags."""
    return {"train": arguments, "validation": validation_settings(args), "evaluation": eval_arguments(args)}


VALIDATION_FLAGS = {"videos": "--val_videos", "frames": "--val_frames", "size": "--size", "max_objects": "--objects"}


def validation_settings(args: argparse.Namespace) -> dict:
    """The generated validation set, as demo_summary.json records it."""
    return {"videos": args.val_videos, "frames": args.val_frames, "size": list(args.size), "max_objects": args.objects}


def stopped_checkpoint(out: Path) -> Path:
    """The checkpoint of the paused demo run in `out` (--resume), or an InputError saying why there is none."""
    if (out / "demo_summary.json").is_file():
        raise InputError(f"{out}: this run is finished (demo_summary.json); run without --resume to start again")
    runs = sorted(p for p in (out / "train").glob("*") if p.is_dir())
    checkpoint = runs[-1] / f"{runs[-1].name}_checkpoint.pth" if runs else None
    if not (out / "data").is_dir() or checkpoint is None or not checkpoint.is_file():
        raise InputError(f"{out}: no stopped demo run to resume (it needs data/ and train/<run>/<run>_checkpoint.pth); "
                         "run without --resume to start one")
    return checkpoint


def check_same_recipe(out: Path, recipe: dict) -> float:
    """Refuse a resume whose flags would make another run than the one paused in `out`; returns the training
    minutes of the earlier parts."""
    path = out / RECIPE_FILE
    if not path.is_file():
        raise InputError(f"{path}: not found, so the flags this run was started with are unknown; run without "
                         "--resume to start again")
    started = json.loads(path.read_text())
    before, now = _flag_values(started), _flag_values(recipe)
    changed = [f"{flag} {before.get(flag, '(unset)')} (now {now.get(flag, '(unset)')})"
               for flag in sorted(set(before) | set(now)) if before.get(flag) != now.get(flag)]
    if changed:
        raise InputError(f"{out}: started with other flags: {', '.join(changed)}; resume with the flags the run "
                         "was started with")
    return started.get("train_minutes_before", 0.0)


def record_recipe(out: Path, recipe: dict, train_minutes_before: float) -> None:
    with atomic_path(out / RECIPE_FILE) as tmp:
        tmp.write_text(json.dumps({**recipe, "train_minutes_before": train_minutes_before}, indent=2))


def _flag_values(recipe: dict) -> dict[str, str]:
    """A recipe as flag -> value, to name the flags that differ."""
    values = {VALIDATION_FLAGS[key]: str(value) for key, value in recipe["validation"].items()}
    return {**values, **flag_values(recipe["train"]), **flag_values(recipe["evaluation"])}



class _LineReader:
    """Echo a child's stdout lines that matter (not its config dump) while keeping them all."""

    def __init__(self, stream, lines: list) -> None:
        import threading

        self.thread = threading.Thread(target=self._read, args=(stream, lines), daemon=True)
        self.thread.start()

    @staticmethod
    def _read(stream, lines: list) -> None:
        depth = 0
        for line in stream:
            lines.append(line)
            depth += line.count("{") - line.count("}")
            if depth == 0 and not line.startswith("}"):
                print(f"    {line.rstrip()}", flush=True)

    def join(self) -> None:
        self.thread.join()


def _run_folder(save_dir: Path) -> Path:
    runs = sorted(p for p in save_dir.iterdir() if p.is_dir())
    if not runs:
        raise SystemExit(f"train.py wrote no run folder under {save_dir}")
    return runs[-1]


# ---- [4] evaluation -------------------------------------------------------------------------------------
def eval_arguments(args: argparse.Namespace) -> list[str]:
    return ["--mem_every", str(args.mem_every), "--top", str(args.top), "--device", "cpu"]


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


# ---- [5] pictures ---------------------------------------------------------------------------------------
def overlay_gif(data: Path, masks: Path, path: Path, videos: int = 4, scale: int = 2) -> None:
    """An animated GIF: one row per video, the trained network's masks | the ground truth, over the frames."""
    palette = np.array(DAVIS_PALETTE, dtype=np.uint8).reshape(-1, 3)
    names = (data / "ImageSets" / "2017" / "val.txt").read_text().split()[:videos]
    rows = []
    for name in names:
        frames = sorted((data / "JPEGImages" / "480p" / name).glob("*.jpg"))
        row = []
        for frame in frames:
            image = read_image(frame)
            predicted = read_indexed_png(masks / name / f"{frame.stem}.png")[0]
            truth = read_indexed_png(data / "Annotations" / "480p" / name / f"{frame.stem}.png")[0]
            row.append(np.concatenate([_blend(image, predicted, palette), _blend(image, truth, palette)], axis=1))
        rows.append(row)
    length = min(len(row) for row in rows)
    pictures = []
    for t in range(length):
        grid = np.concatenate([row[t] for row in rows], axis=0)
        grid = cv2.resize(grid, None, fx=scale, fy=scale, interpolation=cv2.INTER_NEAREST)
        pictures.append(Image.fromarray(grid))
    with atomic_path(path) as tmp:
        pictures[0].save(tmp, format="GIF", save_all=True, append_images=pictures[1:], duration=200, loop=0)


def _blend(image: np.ndarray, labels: np.ndarray, palette: np.ndarray) -> np.ndarray:
    out = image.astype(np.float32)
    inside = labels > 0
    out[inside] = 0.45 * out[inside] + 0.55 * palette[labels[inside]]
    edges = cv2.morphologyEx((labels > 0).astype(np.uint8), cv2.MORPH_GRADIENT, np.ones((3, 3), np.uint8)) > 0
    out[edges] = 255
    return out.astype(np.uint8)


# ---- the whole demo -------------------------------------------------------------------------------------
def parse_args(argv: Optional[list[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reference", type=Path, default=DEFAULT_REFERENCE,
                        help="folder of the reference fixtures (default: the project's reference/)")
    parser.add_argument("--skip_parity", action="store_true", help="skip step 1")
    parser.add_argument("--out", type=Path, default=ROOT / "demo_output", help="the demo folder (replaced)")
    parser.add_argument("--minutes", type=float, default=float(os.environ.get("DEMO_MINUTES", DEFAULT_MINUTES)),
                        help="training budget in minutes (default: $DEMO_MINUTES or %(default)s)")
    parser.add_argument("--stop_at", type=int,
                        help="stop training at this iteration with a checkpoint (a job time limit, a long recipe "
                             "split over days); the same command with --resume continues it")
    parser.add_argument("--resume", action="store_true",
                        help="continue the run stopped in --out (by --stop_at or Ctrl-C), given the flags it was "
                             "started with, then evaluate")
    parser.add_argument("--seed", type=int, default=SEED,
                        help="train.py's seed: the network's initialisation and training samples (the validation "
                             "videos stay the same); repeat with other seeds to see the spread")
    add_recipe_args(parser)
    # twice the paper's rate (docs/learning.md, "Spread over seeds"); batch 2: about twice the iterations in
    # the budget; scripts/ablation_table.py keeps 1e-4 and batch 4, as its table was measured
    parser.set_defaults(lr=DEMO_LR, batch=DEMO_BATCH)
    recipe = parser.add_argument_group("learning curve")
    recipe.add_argument("--curve_points", type=int, default=5,
                        help="validations during training (train.py --val_every) for the learning curve "
                             "(at most %d)" % MAX_CURVE_POINTS)
    evaluation = parser.add_argument_group("evaluation (eval_davis.py flags)")
    evaluation.add_argument("--mem_every", type=int, default=5)
    evaluation.add_argument("--top", type=int, default=20)
    args = parser.parse_args(argv)
    if args.minutes <= 0:
        parser.error("the training budget (--minutes / DEMO_MINUTES) must be positive")
    if not 2 <= args.sample_frames <= args.train_frames or args.max_jump < 0:
        parser.error(f"--sample_frames {args.sample_frames} must be between 2 and --train_frames "
                     f"({args.train_frames}), and --max_jump {args.max_jump} at least 0")
    if args.stop_at is not None and not (args.iterations and 1 <= args.stop_at < args.iterations):
        parser.error(f"--stop_at {args.stop_at}: a pause needs --iterations N (a budget plans its length as it goes) "
                     f"and must be between 1 and N - 1")
    return args


def add_recipe_args(parser: argparse.ArgumentParser, iterations_flag: bool = True) -> None:
    """The synthetic data and the training recipe: the demo's, shared with scripts/ablation_table.py
    (which has its own --iterations)."""
    data = parser.add_argument_group("synthetic data")
    data.add_argument("--size", type=int, nargs=2, default=(96, 160), metavar=("H", "W"), help="frame size")
    data.add_argument("--val_videos", type=int, default=16)
    data.add_argument("--val_frames", type=int, default=20)
    data.add_argument("--train_frames", type=int, default=20, help="length of the generated training videos")
    data.add_argument("--train_size", type=int, nargs=2, metavar=("H", "W"),
                      help="size of the generated training frames (default: --size, the validation frames')")
    data.add_argument("--objects", type=int, default=3, help="most objects per validation video")
    recipe = parser.add_argument_group("training recipe (train.py flags)")
    if iterations_flag:
        recipe.add_argument("--iterations", type=int, default=0,
                            help="train exactly this many iterations, however long they take (default: as many as "
                                 "fit in the budget; the summary records how many that was)")
    recipe.add_argument("--batch", type=int, default=4)
    recipe.add_argument("--crop", type=int, default=384,
                        help="train.py --crop_size: a square crop of the generated frames, or whole frames "
                             "when at least their longer side (default)")
    recipe.add_argument("--lr", type=float, default=1e-4, help="Adam's learning rate (default: %(default)g)")
    recipe.add_argument("--warmup", type=int, default=100)
    recipe.add_argument("--clip_grad", type=float, default=1.0)
    recipe.add_argument("--bootstrap_start", type=int, default=1_000_000,
                        help="plain cross-entropy before this iteration (default: throughout)")
    recipe.add_argument("--bootstrap_end", type=int, default=0,
                        help="the bootstrapped cross-entropy reaches its top 15%% of pixels here (default: at once)")
    recipe.add_argument("--pool", type=int, default=0,
                        help="train on a fixed set of this many synthetic videos (default 0: a new one per sample)")
    recipe.add_argument("--sample_frames", type=int, default=FRAMES,
                        help="frames per training sample (default: the paper's %(default)s)")
    recipe.add_argument("--max_targets", type=int, choices=(1, 2), default=MAX_TARGETS,
                        help="target objects per training sample, at most (default: the paper's %(default)s)")
    recipe.add_argument("--max_jump", type=int, default=0,
                        help="a fixed largest distance between sampled frames instead of the curriculum (default 0: "
                             "the curriculum)")
    recipe.add_argument("--cpu_amp", action="store_true", help="bf16 autocast")
    recipe.add_argument("--num_workers", type=int, default=1)


def main(argv: Optional[list[str]] = None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    out = args.out.resolve()
    checkpoint = stopped_checkpoint(out) if args.resume else None
    if not args.skip_parity and not run_parity(args.reference):
        return 1
    data, save_dir = out / "data", out / "train"
    height, width = args.size
    if args.resume:
        print(f"\n[2] Continuing the stopped run in {out} from {checkpoint.name}", flush=True)
    else:
        if out.exists():
            shutil.rmtree(out)
        out.mkdir(parents=True)
        print(f"\n[2] Synthetic data in {out}", flush=True)
        write_validation_set(data, args.val_videos, args.val_frames, (height, width), args.objects)
        print(f"    validation: {args.val_videos} videos x {args.val_frames} frames at {height}x{width}, "
              f"1-{args.objects} objects ({data}, DAVIS layout)")
    drawn = f"one of {args.pool} fixed" if args.pool else "a fresh"
    train_height, train_width = args.train_size or args.size
    print(f"    training: {drawn} {args.train_frames}-frame {train_height}x{train_width} video for every sample "
          f"(train.py --synthetic)", flush=True)

    points = min(MAX_CURVE_POINTS, max(1, args.curve_points))
    if args.iterations:  # exactly these iterations, however long they take: a recorded run repeated
        print(f"\n[3] Training with train.py for {args.iterations} iterations", flush=True)
        arguments = train_arguments(args, 3, args.iterations, save_dir, args.iterations, seed=args.seed,
                                    val_root=data, val_points=points)
        deadline = float("inf")
        print(f"    validated {points} times", flush=True)
    else:  # train.py plans the iterations from its measured speed, once start-up is over
        print(f"\n[3] Training with train.py for {args.minutes:g} minutes", flush=True)
        arguments = train_arguments(args, 3, PLAN_SHAPE, save_dir, 10 * PLAN_SHAPE, seed=args.seed, val_root=data,
                                    val_points=points, minutes=args.minutes)
        deadline = args.minutes * 60 * 1.5 + 300  # a safety net: train.py stops itself at the budget
        print(f"    {args.minutes:g} minutes of training steps (train.py --minutes), validated {points} times",
              flush=True)
    recipe = demo_recipe(args, arguments)
    minutes_before = check_same_recipe(out, recipe) if args.resume else 0.0
    record_recipe(out, recipe, minutes_before)
    arguments = arguments + (["--resume", str(checkpoint)] if args.resume else []) + \
        (["--stop_at", str(args.stop_at)] if args.stop_at else [])  # a new list: the recipe keeps its own
    print("    python train.py " + " ".join(arguments), flush=True)
    training = run_train(arguments, save_dir, deadline)
    weights, done, train_minutes = training.weights, training.iteration, minutes_before + training.minutes
    if training.paused:
        record_recipe(out, recipe, train_minutes)
        print(f"\nTraining paused ({training.paused}) at iteration {done} with a checkpoint: the same command with "
              f"--resume (without --stop_at, or with a later one) continues it, then evaluates.")
        return 130 if training.paused == "Ctrl-C" else 0

    print("\n[4] Evaluation on the validation set with eval_davis.py", flush=True)
    trained = run_eval_davis(weights, data, out / "masks", args, zip_too=True)
    untrained = run_eval_davis(untrained_weights(out / "untrained.pth", args.seed), data, out / "untrained", args, zip_too=False)
    copy_first = copy_first_mask(data, out / "copy_first")
    print(f"\n    {'':12s} {'J&F':>6s} {'J':>6s} {'F':>6s}")
    for name, numbers in (("trained", trained), ("untrained", untrained), ("copy-first", copy_first)):
        print(f"    {name:12s} {numbers['jf']:6.3f} {numbers['j']:6.3f} {numbers['f']:6.3f}")
    print(f"    trained - untrained = {trained['jf'] - untrained['jf']:+.3f}   "
          f"trained - copy-first = {trained['jf'] - copy_first['jf']:+.3f}   {trained['fps']:.1f} FPS", flush=True)

    print("\n[5] Pictures", flush=True)
    overlay_gif(data, out / "masks", out / "overlay.gif")
    run = _run_folder(save_dir)
    curve = [{"iteration": int(row["iteration"]), "minutes": row["train_minutes"], "jf": row["jf"]}
             for row in read_history(run / "val" / "history.csv")]  # validation during training
    learning_curve([(0.0, untrained["jf"])] + [(c["minutes"], c["jf"]) for c in curve],
                   {"copy-first": copy_first["jf"], "untrained": untrained["jf"]}, out / "learning_curve.png",
                   title="J&F on the synthetic validation set")

    summary = {
        "jf_trained": trained["jf"], "jf_untrained": untrained["jf"], "jf_copy_first": copy_first["jf"],
        "fps": trained["fps"], "train_minutes": train_minutes, "iterations": done,
        "j_f": {"trained": [trained["j"], trained["f"]], "untrained": [untrained["j"], untrained["f"]],
                "copy_first": [copy_first["j"], copy_first["f"]]},
        "learning_curve": curve, "weights": str(weights.relative_to(out)),
        "train_command": "python train.py " + " ".join(arguments),
        "eval_flags": " ".join(eval_arguments(args)),
        "validation": validation_settings(args),
        "total_minutes": (time.perf_counter() - started) / 60,
    }
    with atomic_path(out / "demo_summary.json") as tmp:
        tmp.write_text(json.dumps(summary, indent=2))
    print(f"    {out / 'overlay.gif'}\n    {out / 'learning_curve.png'}\n    {out / 'demo_summary.json'}")
    print(f"    TensorBoard: tensorboard --logdir {run / 'logs'}")
    print(f"\nDone in {summary['total_minutes']:.1f} min: everything is in {out}")
    return 0


def _with_fast_malloc() -> None:
    """Start again with FAST_MALLOC in the environment (read by glibc at start; inherited by train.py
    and eval_davis.py); values already set are kept."""
    if any(key not in os.environ for key in FAST_MALLOC):
        os.execve(sys.executable, [sys.executable, *sys.argv], {**FAST_MALLOC, **os.environ})


if __name__ == "__main__":
    _with_fast_malloc()
    run_cli(main)
