"""train.py's flags, the supplementary's numbers per stage, and the configuration object of a run."""
import argparse
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Optional

from dataset.curriculum import SWITCH_PERCENTS
from dataset.sampling import FRAMES, MAX_TARGETS, ClipSpec
from model.backbones import BACKBONES
from model.checkpoint import ARCHS, read_checkpoint, resolve_spec, similarity_for
from model.memory import SIMILARITIES
from util.cli import (ArgumentParser, Renamed, at_least, check_flags, existing_file, existing_folder, output_folder, positive,
                      weights_file)
from util.fileio import InputError


@dataclass(frozen=True)
class StageDefaults:
    """The supplementary's numbers for one training stage (F.1, F.3, F.4)."""

    iterations: int
    steps: tuple[int, ...]
    batch_size: int
    single_object: bool
    data: str  # 'static', 'bl30k' or 'vos'
    name: str


# Stage numbers as in the original code: 0 static pretraining, 1 BL30K, 2 main training after BL30K
# (extended to 300K), 3 main training (150K).
STAGES = {
    0: StageDefaults(300_000, (150_000,), 16, True, "static", "static image pretraining"),
    1: StageDefaults(500_000, (450_000,), 8, False, "bl30k", "BL30K training"),
    2: StageDefaults(300_000, (250_000,), 8, False, "vos", "main training after BL30K"),
    3: StageDefaults(150_000, (125_000,), 8, False, "vos", "main training"),
}


# Values that make no sense stop train.py at once (exit 2) instead of failing later with a traceback.
FLAG_RULES = {
    "iterations": at_least(1), "batch_size": at_least(1), "lr": positive(), "gamma": positive(),
    "weight_decay": at_least(0), "warmup": at_least(0), "clip_grad": at_least(0), "bootstrap_start": at_least(0),
    "bootstrap_end": at_least(0), "bootstrap_top_p": (lambda p: 0 < p <= 1, "must be in (0, 1]"),
    "crop_size": at_least(16), "num_workers": at_least(0), "save_every": at_least(1), "log_every": at_least(1),
    "log_image_every": at_least(1), "max_nonfinite": at_least(1), "stop_at": at_least(1),
    "steps": (lambda steps: all(step >= 0 for step in steps), "iterations must be at least 0"),
    "synthetic": (lambda hwf: min(hwf[:2]) >= 16 and hwf[2] >= 2, "needs H and W of at least 16 and 2 frames"),
    "sample_frames": at_least(2), "max_jump": at_least(0),
    "curriculum_at": (lambda switches: len(switches) == len(SWITCH_PERCENTS) and list(switches) == sorted(switches)
                      and switches[0] >= 0, f"needs {len(SWITCH_PERCENTS)} iterations in order"),
}


def checkpoint_or_auto(text: str) -> Path:
    """--resume: a checkpoint file, or 'auto' (the newest run of this --id, decided by train.py)."""
    return Path(text) if text == "auto" else weights_file(text)


def training_parser() -> argparse.ArgumentParser:
    """train.py's flags, in groups: the original code's names where it had them, the seed's numbers as defaults."""
    parser = ArgumentParser(description="Train STCN (one stage of the paper per run).")
    parser.add_argument("--stage", type=int, choices=tuple(STAGES), required=True,
                        help="0 static images, 1 BL30K, 2 main after BL30K (300K), 3 main (150K)")
    parser.add_argument("--id", default="NULL", help="experiment name; checkpoints go to <save_dir>/<date>_<id>")
    _add_schedule_args(parser.add_argument_group("optimiser, schedule and loss (stage defaults from the table)"))
    _add_network_args(parser.add_argument_group("network and the weights to start from"))
    _add_data_args(parser.add_argument_group("training data"))
    _add_run_args(parser.add_argument_group("checkpoints, logging, device and time budget"))
    _add_validation_args(parser.add_argument_group("validation during training"))
    _add_lever_args(parser.add_argument_group("what a video sample holds (recipe levers; the defaults are the paper's)"))
    return parser


def _add_schedule_args(parser) -> None:
    parser.add_argument("-i", "--iterations", type=int, help="total iterations (stage default)")
    parser.add_argument("-b", "--batch_size", type=int, help="total batch over all processes (stage default)")
    parser.add_argument("--steps", type=int, nargs="*", help="iterations at which the lr decays (stage default)")
    parser.add_argument("--curriculum_at", type=int, nargs="+", metavar="ITERATION",
                        help="the 5 iterations where the frame-gap curriculum moves on (default: the supplementary's "
                             "10, 20, 30, 40 and 90%% of -i, 80%% for BL30K); a budgeted run prints where its came")
    parser.add_argument("--lr", type=float, default=1e-5)
    parser.add_argument("--gamma", type=float, default=0.1, help="lr decay factor at each step")
    parser.add_argument("--weight_decay", type=float, default=1e-7)
    parser.add_argument("--warmup", type=int, default=0, help="linear lr warm-up iterations (0 as in the paper)")
    parser.add_argument("--clip_grad", type=float, default=0.0,
                        help="gradient norm clipping (0 = off, as in the paper)")
    parser.add_argument("--bootstrap_start", type=int, default=20_000, help="plain CE before this iteration")
    parser.add_argument("--bootstrap_end", type=int, default=70_000, help="top-p reaches its final value here")
    parser.add_argument("--bootstrap_top_p", type=float, default=0.15)


def _add_network_args(parser) -> None:
    parser.add_argument("--arch", choices=tuple(ARCHS), default=None,
                        help="stcn (the paper, default) or stm (the Table 1 baseline); weights given by "
                             "--load_network/--resume decide it and must not contradict it")
    parser.add_argument("--similarity", choices=SIMILARITIES, default=None,
                        help="memory similarity (Table 1); default: l2 for STCN, dot for STM, or what the "
                             "--load_network weights were trained with")
    parser.add_argument("--no_cbam", action="store_true",
                        help="fuse value and key features without CBAM (the authors' ablation; STCN only)")
    parser.add_argument("--backbone", choices=BACKBONES, default="resnet50",
                        help="key encoder (supplementary E); weights given by --load_network/--resume decide it")
    parser.add_argument("--load_network", type=weights_file, help="initial weights (stage-0 weights are widened)")
    parser.add_argument("--load_model", type=checkpoint_or_auto, dest="resume", action=Renamed, new_name="--resume",
                        help=argparse.SUPPRESS)
    parser.add_argument("--resume", type=checkpoint_or_auto,
                        help="continue a run exactly from <name>_checkpoint.pth; 'auto': from the checkpoint of the "
                             "newest run of this --id under --save_dir, or a new run when there is none (the same "
                             "command for the first start and every restart, e.g. under torchrun --max_restarts)")


def _add_data_args(parser) -> None:
    parser.add_argument("--static_root", type=Path, default=Path("../static"))
    parser.add_argument("--bl_root", type=Path, default=Path("../BL30K"))
    parser.add_argument("--yv_root", type=Path, default=Path("../YouTube"))
    parser.add_argument("--davis_root", type=Path, default=Path("../DAVIS"))
    parser.add_argument("--yv_subset", type=existing_file,
                        help="train on the YouTubeVOS videos this file names, one per line (the authors train on "
                             "a filtered list; see docs/usage.md); default: every video of train_480p")
    parser.add_argument("--crop_size", type=int, default=384)
    parser.add_argument("--num_workers", type=int, default=8, help="data loader processes per GPU/process")
    parser.add_argument("--synthetic", type=int, nargs=3, metavar=("H", "W", "FRAMES"),
                        help="train on a fresh synthetic sample per sample (dataset/synthetic_online.py) instead of "
                             "the stage's datasets: HxW frames (images for stage 0), videos of FRAMES frames")
    parser.add_argument("--synthetic_pool", type=int, default=0, metavar="N",
                        help="with --synthetic: draw the samples from a fixed set of N videos (images) instead of "
                             "a new one each time (default 0: always new)")


def _add_run_args(parser) -> None:
    parser.add_argument("--save_dir", type=output_folder, default=Path("saves"))
    parser.add_argument("--save_every", type=int, default=10_000, help="network + full checkpoint interval")
    parser.add_argument("--log_every", type=int, default=100, help="TensorBoard scalar interval")
    parser.add_argument("--log_image_every", type=int, default=800, help="TensorBoard image grid interval")
    parser.add_argument("--seed", type=int, default=14159265)
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    parser.add_argument("--no_amp", action="store_true", help="no mixed precision (AMP is on by default on CUDA)")
    parser.add_argument("--cpu_amp", action="store_true", help="bf16 autocast on the CPU")
    parser.add_argument("--no_pretrained", action="store_true", help="no ImageNet initialisation")
    parser.add_argument("--benchmark", action="store_true", help="torch.backends.cudnn.benchmark")
    parser.add_argument("--literal_forward", action="store_true",
                        help="compute the frame-only convolutions once per object and encode and decode the objects "
                             "a sample lacks, as the authors' code does (slower, same losses up to float rounding; "
                             "for comparisons)")
    parser.add_argument("--channels_last", action="store_true",
                        help="train in channels-last memory format (slower on the CPU here; docs/speed.md)")
    parser.add_argument("--debug", action="store_true", help="log every iteration and images every 10")
    parser.add_argument("--max_nonfinite", type=int, default=10, help="stop after this many non-finite losses in a row")
    parser.add_argument("--minutes", type=float,
                        help="train for this many minutes of training steps (validation and checkpoints come on "
                             "top), each phase of the -i/--steps schedule (learning-rate steps, curriculum switches, "
                             "--val_points) when its share of the minutes is spent; the iterations where they came "
                             "are printed and recorded, and -i N --steps S --curriculum_at C repeats the run")
    parser.add_argument("--stop_at", type=int,
                        help="stop at this iteration with a checkpoint to --resume from (e.g. to fit a job time "
                             "limit); past -i, the schedule's last phase (its last learning rate and curriculum "
                             "phase) goes on to it")


def _add_validation_args(parser) -> None:
    parser.add_argument("--val_root", type=existing_folder,
                        help="validate on the val list of this DAVIS 2017-layout set (J&F, in-process) every "
                             "--val_every iterations and at the end; the best network is kept as <run>_best.pth")
    parser.add_argument("--val_every", type=int, default=0, help="validation interval (0: at the end only)")
    parser.add_argument("--val_points", type=int, default=0,
                        help="instead of --val_every: validate this many times, evenly over -i (with --minutes, over the minutes)")


def _add_lever_args(parser) -> None:
    parser.add_argument("--sample_frames", type=int, default=FRAMES,
                        help="frames per sample: the first one's mask is given, the others are segmented in turn "
                             "from the memory of those before")
    parser.add_argument("--max_targets", type=int, choices=(1, 2), default=MAX_TARGETS,
                        help="target objects per sample, at most")
    parser.add_argument("--max_jump", type=int, default=0,
                        help="a fixed largest distance between sampled frames (video frames) instead of the "
                             "curriculum of supplementary F.4 (0, the default)")


@dataclass(frozen=True)
class DataConfig:
    """What a stage trains on and what one sample holds."""

    kind: str  # 'static', 'bl30k' or 'vos' (the stage's)
    single_object: bool  # static images: one object per sample
    static_root: Path
    bl_root: Path
    yv_root: Path
    davis_root: Path
    yv_subset: Optional[Path]
    crop_size: int
    num_workers: int
    synthetic: Optional[tuple[int, int, int]]  # (H, W, frames) of fresh synthetic samples instead of the datasets
    synthetic_pool: int  # > 0: a fixed set of that many synthetic videos instead of fresh ones
    clip: ClipSpec  # frames and target objects per video sample
    max_jump: int  # > 0: this fixed largest frame distance instead of the curriculum

    @property
    def follows_curriculum(self) -> bool:
        """Whether the samples follow the frame-gap curriculum (video stages without --max_jump)."""
        return self.kind != "static" and not self.max_jump


@dataclass(frozen=True)
class NetworkConfig:
    """The network trained, where its weights start, and how its forward pass is run."""

    arch: str
    similarity: str
    cbam: bool
    backbone: str
    pretrained: bool  # ImageNet initialisation of the encoders
    load_network: Optional[Path]
    literal_forward: bool  # every object's every convolution, as the authors' code (comparisons)
    channels_last: bool


@dataclass(frozen=True)
class OptimConfig:
    """Adam, the loss and the precision of a step."""

    batch_size: int  # over all processes
    lr: float
    weight_decay: float
    clip_grad: float
    bootstrap_start: int
    bootstrap_end: int
    bootstrap_top_p: float
    max_nonfinite: int
    amp: bool
    cpu_amp: bool


@dataclass(frozen=True)
class ScheduleConfig:
    """How long the run is and where its phases change: -i, --steps and --curriculum_at, or a budget of
    --minutes that places the same shares by time (training/budget.py)."""

    iterations: int
    steps: tuple[int, ...]
    gamma: float
    warmup: int
    curriculum_at: Optional[tuple[int, ...]]  # the curriculum's switch iterations (default: shares of -i)
    minutes: Optional[float]


@dataclass(frozen=True)
class LogConfig:
    """What the run writes and when: checkpoints, TensorBoard, validation on a held-out set."""

    save_dir: Path
    save_every: int
    log_every: int
    log_image_every: int
    val_root: Optional[Path]
    val_every: int
    val_points: int


@dataclass(frozen=True)
class TrainConfig:
    """The effective configuration of a training run, in groups (saved flat with every checkpoint and in the
    run's config.json: `to_json`)."""

    stage: int
    run_id: str
    seed: int
    device: str
    benchmark: bool  # torch.backends.cudnn.benchmark
    resume: Optional[Path]
    data: DataConfig
    network: NetworkConfig
    optim: OptimConfig
    schedule: ScheduleConfig
    log: LogConfig

    GROUPS = ("data", "network", "optim", "schedule", "log")

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> "TrainConfig":
        check_flags(args, FLAG_RULES)
        stage = STAGES[args.stage]
        return cls(stage=args.stage, run_id=args.id, seed=args.seed, device=args.device, benchmark=args.benchmark,
                   resume=args.resume, data=_data_config(args, stage), network=_network_config(args),
                   optim=_optim_config(args, stage), schedule=_schedule_config(args, stage), log=_log_config(args))

    def validates_at(self, iteration: int) -> bool:
        """Whether a validation falls at `iteration` besides the one at the run's end: every --val_every, or
        --val_points evenly over -i and none past it (with --minutes the budget places them instead)."""
        if self.log.val_points and self.schedule.minutes:
            return False
        if self.log.val_points:
            interval = max(1, -(-self.schedule.iterations // self.log.val_points))
            return iteration % interval == 0 and iteration < self.schedule.iterations
        return bool(self.log.val_every) and iteration % self.log.val_every == 0

    def schedule_flags(self) -> list[str]:
        """The flags that give a run this schedule: -i, --steps and, for a curriculum, --curriculum_at."""
        schedule = self.schedule
        flags = ["-i", str(schedule.iterations), "--steps", *map(str, schedule.steps)]
        if self.data.follows_curriculum and schedule.curriculum_at is not None:
            flags += ["--curriculum_at", *map(str, schedule.curriculum_at)]
        return flags

    def replaced(self, **changes) -> "TrainConfig":
        """A copy with settings changed by their names in `to_json`, whichever group holds them."""
        if "sample_frames" in changes or "max_targets" in changes:
            clip = self.data.clip
            changes["clip"] = ClipSpec(changes.pop("sample_frames", clip.frames),
                                       changes.pop("max_targets", clip.max_targets))
        if "data" in changes:
            changes["kind"] = changes.pop("data")
        groups, top = {name: {} for name in self.GROUPS}, {}
        for name, value in changes.items():
            group = next((g for g in self.GROUPS if name in getattr(self, g).__dataclass_fields__), None)
            if group is None and (name in self.GROUPS or name not in self.__dataclass_fields__):
                raise KeyError(f"no training setting {name!r}")
            (groups[group] if group else top)[name] = value
        return replace(self, **top, **{g: replace(getattr(self, g), **c) for g, c in groups.items() if c})

    def to_json(self) -> dict:
        """Every setting in one flat record, by the names of earlier checkpoints (mostly the flags': `lr` for
        --lr, `cbam` for --no_cbam, `data` for the stage's kind of data)."""
        flat = {name: getattr(self, name) for name in self.__dataclass_fields__ if name not in self.GROUPS}
        for group in self.GROUPS:
            flat.update(asdict(getattr(self, group)))
        flat["data"] = flat.pop("kind")
        clip = flat.pop("clip")
        flat.update(sample_frames=clip["frames"], max_targets=clip["max_targets"])
        return {k: (str(v) if isinstance(v, Path) else v) for k, v in flat.items()}


def _data_config(args: argparse.Namespace, stage: StageDefaults) -> DataConfig:
    synthetic = tuple(args.synthetic) if args.synthetic else None
    if args.synthetic_pool and synthetic is None:
        raise InputError("--synthetic_pool needs --synthetic")
    if args.synthetic_pool < 0:
        raise InputError(f"--synthetic_pool must be at least 0, got {args.synthetic_pool}")
    clip = ClipSpec(args.sample_frames, args.max_targets)
    if stage.data == "static" and (clip.frames != FRAMES or args.max_jump):
        raise InputError(f"stage {args.stage} warps one image into {FRAMES} frames: --sample_frames and "
                         f"--max_jump are for the video stages (1-3)")
    if synthetic is not None and stage.data != "static" and synthetic[2] < clip.frames:
        raise InputError(f"--synthetic videos of {synthetic[2]} frames cannot give --sample_frames {clip.frames}")
    return DataConfig(kind=stage.data, single_object=stage.single_object, static_root=args.static_root,
                      bl_root=args.bl_root, yv_root=args.yv_root, davis_root=args.davis_root, yv_subset=args.yv_subset,
                      crop_size=args.crop_size, num_workers=args.num_workers, synthetic=synthetic,
                      synthetic_pool=args.synthetic_pool, clip=clip, max_jump=args.max_jump)


def _network_config(args: argparse.Namespace) -> NetworkConfig:
    arch = args.arch or "stcn"
    if args.no_cbam and arch != "stcn":
        raise InputError("--no_cbam is an STCN ablation (STM has no fusion block)")
    return NetworkConfig(arch=arch, similarity=similarity_for(arch, args.similarity), cbam=not args.no_cbam,
                         backbone=args.backbone, pretrained=not args.no_pretrained, load_network=args.load_network,
                         literal_forward=args.literal_forward, channels_last=args.channels_last)


def _optim_config(args: argparse.Namespace, stage: StageDefaults) -> OptimConfig:
    return OptimConfig(batch_size=args.batch_size or stage.batch_size, lr=args.lr, weight_decay=args.weight_decay,
                       clip_grad=args.clip_grad, bootstrap_start=args.bootstrap_start,
                       bootstrap_end=args.bootstrap_end, bootstrap_top_p=args.bootstrap_top_p,
                       max_nonfinite=args.max_nonfinite, amp=not args.no_amp, cpu_amp=args.cpu_amp)


def _schedule_config(args: argparse.Namespace, stage: StageDefaults) -> ScheduleConfig:
    if args.minutes is not None and args.minutes <= 0:
        raise InputError(f"--minutes must be positive, got {args.minutes}")
    curriculum_at = tuple(args.curriculum_at) if args.curriculum_at else None
    if curriculum_at and (stage.data == "static" or args.max_jump or args.minutes):
        raise InputError("--curriculum_at places the frame-gap curriculum of a video stage (1-3): not with "
                         "--max_jump, nor with --minutes (which places it by time)")
    return ScheduleConfig(iterations=args.iterations or stage.iterations,
                          steps=tuple(args.steps) if args.steps is not None else stage.steps, gamma=args.gamma,
                          warmup=args.warmup, curriculum_at=curriculum_at, minutes=args.minutes)


def _log_config(args: argparse.Namespace) -> LogConfig:
    if args.val_every < 0 or (args.val_every and args.val_root is None):
        raise InputError(f"--val_every {args.val_every}: give a positive interval, with --val_root")
    if args.val_points < 0 or (args.val_points and (args.val_root is None or args.val_every)):
        raise InputError(f"--val_points {args.val_points}: give a positive count, with --val_root and without "
                         f"--val_every")
    log_every, log_image_every = (1, 10) if args.debug else (args.log_every, args.log_image_every)
    return LogConfig(save_dir=args.save_dir, save_every=args.save_every, log_every=log_every,
                     log_image_every=log_image_every, val_root=args.val_root, val_every=args.val_every,
                     val_points=args.val_points)


def adopt_weights_structure(config: TrainConfig, arch_flag: Optional[str], similarity_flag: Optional[str]) -> TrainConfig:
    """What the weights we start from, if any, decide: architecture, key encoder variant and CBAM (no flag
    needed), and without --similarity the similarity they were trained with. A contradicting --arch is an
    error."""
    source = config.resume or config.network.load_network
    if source is None:
        return config
    found = resolve_spec(source, read_checkpoint(source))  # the similarity as recorded (no flag to contradict)
    if arch_flag and found.arch != arch_flag:
        raise InputError(f"{source}: holds an {found.arch.upper()} network; --arch {arch_flag} cannot load it "
                         f"(pass --arch {found.arch} or no --arch)")
    if found.backbone != config.network.backbone:
        print(f"{source} holds a {found.backbone} key encoder: using it (not --backbone {config.network.backbone})")
    if found.cbam != config.network.cbam:
        print(f"{source} was trained {'with' if found.cbam else 'without'} CBAM: keeping that")
    return config.replaced(arch=found.arch, backbone=found.backbone, cbam=found.cbam,
                           similarity=similarity_flag or found.similarity)
