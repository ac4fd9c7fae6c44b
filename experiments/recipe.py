"""The demo's recipe: its synthetic validation set, train.py's command line for it, and the bookkeeping
that makes a run stopped with --stop_at or Ctrl-C continue as the same run."""
import argparse
import json
from pathlib import Path
from typing import Optional

from PIL import Image
from tqdm import tqdm

from dataset.sampling import FRAMES, MAX_TARGETS
from dataset.synthetic import generate_video, sample_rng
from util.cli import Renamed, flag_values
from util.fileio import InputError, atomic_path
from util.imageio import write_indexed_png

DEFAULT_MINUTES = 18.0
DEMO_LR = 2e-4
DEMO_BATCH = 2
SEED = 14159265  # train.py's default seed: the untrained network is the one training starts from
MAX_CURVE_POINTS = 12
PLAN_SHAPE = 1000  # with a budget: the schedule's shape (-i 1000 --steps 800), its phases placed at their share of the minutes


def add_recipe_args(parser: argparse.ArgumentParser, iterations_flag: bool = True) -> None:
    """The synthetic data and the training recipe: the demo's, shared with scripts/ablation_table.py
    (which has its own --iterations)."""
    data = parser.add_argument_group("synthetic data")
    data.add_argument("--frame_size", type=int, nargs=2, default=(96, 160), metavar=("H", "W"),
                      help="the validation frames' size (default 96 160)")
    data.add_argument("--size", type=int, nargs=2, dest="frame_size", action=Renamed, new_name="--frame_size",
                      help=argparse.SUPPRESS)
    data.add_argument("--val_videos", type=int, default=16)
    data.add_argument("--val_frames", type=int, default=20)
    data.add_argument("--train_frames", type=int, default=20, help="length of the generated training videos")
    data.add_argument("--train_size", type=int, nargs=2, metavar=("H", "W"),
                      help="size of the generated training frames (default: --frame_size, the validation frames')")
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


def train_arguments(args: argparse.Namespace, stage: int, iterations: int, save_dir: Path,
                    save_every: int, load: Optional[Path] = None, seed: int = SEED, run_id: str = "",
                    val_root: Optional[Path] = None, val_points: int = 0, minutes: Optional[float] = None) -> list[str]:
    """train.py's command line for one stage of the demo recipe: `iterations` (the schedule's shape when
    a budget of `minutes` is given: its phases come at their share of the minutes), validated on `val_root` `val_points` times
    evenly and at the end, if given."""
    height, width = args.train_size or args.frame_size
    command = [
        "--stage", str(stage), "--id", run_id or f"demo_s{stage}",
        "--synthetic", str(height), str(width), str(args.train_frames),
        "--no_pretrained", "-i", str(iterations), "--steps", str(max(1, round(0.8 * iterations))),
        "-b", str(args.batch), "--crop_size", str(args.crop), "--lr", str(args.lr), "--warmup", str(args.warmup),
        "--clip_grad", str(args.clip_grad), "--bootstrap_start", str(args.bootstrap_start),
        "--bootstrap_end", str(max(args.bootstrap_end, args.bootstrap_start + 1)),
        "--num_workers", str(args.num_workers),
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


def eval_arguments(args: argparse.Namespace) -> list[str]:
    return ["--mem_every", str(args.mem_every), "--top", str(args.top), "--device", "cpu"]


RECIPE_FILE = "demo_recipe.json"  # the flags a run was started with, and the training minutes of its parts


def demo_recipe(args: argparse.Namespace, arguments: list[str]) -> dict:
    """Everything that makes two parts of a run the same run: train.py's arguments, the validation set and
    the evaluation flags."""
    return {"train": arguments, "validation": validation_settings(args), "evaluation": eval_arguments(args)}


VALIDATION_FLAGS = {"videos": "--val_videos", "frames": "--val_frames", "size": "--frame_size",
                    "max_objects": "--objects"}


def validation_settings(args: argparse.Namespace) -> dict:
    """The generated validation set, as demo_summary.json records it."""
    return {"videos": args.val_videos, "frames": args.val_frames, "size": list(args.frame_size),
            "max_objects": args.objects}


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

