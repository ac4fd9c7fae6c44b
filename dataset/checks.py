"""Check before training that every dataset folder and list a kind of training data reads exists and
is not empty: static images, BL30K, or the main training's DAVIS 2017 and YouTubeVOS."""
from pathlib import Path
from typing import Optional, Union

from dataset.static_dataset import STATIC_SETS
from dataset.vos_dataset import VideoFolders, bl30k_folders, davis_folders, youtube_folders
from util.fileio import InputError

PathLike = Union[str, Path]
DATA_KINDS = ("static", "bl30k", "vos")


def _folder_problem(folder: Path) -> Optional[str]:
    """What is wrong with a folder that must hold data, or None."""
    if not folder.is_dir():
        return f"{folder}: no such folder"
    if next(folder.iterdir(), None) is None:
        return f"{folder}: empty folder"
    return None


def _list_problem(path: Path) -> Optional[str]:
    """What is wrong with a list file that must name at least one item, or None."""
    if not path.is_file():
        return f"{path}: no such file"
    if not path.read_text().strip():
        return f"{path}: empty list"
    return None


def _video_problems(folders: VideoFolders) -> list[str]:
    """Problems of a video set's frame and mask folders and its video list."""
    problems = [_folder_problem(folders.images), _folder_problem(folders.masks)]
    if folders.video_list is not None:
        problems.append(_list_problem(folders.video_list))
    return [problem for problem in problems if problem]


def _static_problems(static_root: Path) -> list[str]:
    """Problems of the six static image set folders."""
    problems = [_folder_problem(static_root / folder) for folder, _ in STATIC_SETS]
    return [problem for problem in problems if problem]


def _root_problems(flag: str, root: Optional[PathLike]) -> list[str]:
    """Problems of the dataset root given as `flag` (before looking inside it)."""
    if root is None:
        return [f"{flag} not given"]
    return [problem for problem in [_folder_problem(Path(root))] if problem]


def _resize_hint(yv_root: Optional[PathLike]) -> list[str]:
    """How to make YouTubeVOS train_480p when only the original train folder is there."""
    if yv_root is None or (Path(yv_root) / "train_480p").is_dir() or not (Path(yv_root) / "train").is_dir():
        return []
    root = Path(yv_root)
    return [f"make {root / 'train_480p'} with: python scripts/resize_youtube.py --in {root / 'train'} "
            f"--out {root / 'train_480p'}"]


def check_roots(data: str, purpose: str, static_root: Optional[PathLike] = None,
                bl_root: Optional[PathLike] = None, yv_root: Optional[PathLike] = None,
                davis_root: Optional[PathLike] = None, yv_subset: Optional[PathLike] = None) -> None:
    """Raise one InputError listing every missing or empty path that training on `data` (one of
    DATA_KINDS) needs; `purpose` says what for in the message (e.g. "stage 3 (main training)")."""
    if data not in DATA_KINDS:
        raise ValueError(f"unknown kind of training data {data!r}; expected one of {DATA_KINDS}")
    problems = []
    if data == "static":
        problems += _root_problems("static_root", static_root) or _static_problems(Path(static_root))
    elif data == "bl30k":
        problems += _root_problems("bl_root", bl_root) or _video_problems(bl30k_folders(bl_root))
    else:
        problems += _root_problems("davis_root", davis_root) or _video_problems(davis_folders(davis_root))
        problems += _root_problems("yv_root", yv_root) or _video_problems(youtube_folders(yv_root, yv_subset))
        problems += _resize_hint(yv_root)
    if problems:
        lines = "\n".join(f"  {problem}" for problem in problems)
        raise InputError(f"{purpose} needs these datasets, missing or empty:\n{lines}")
