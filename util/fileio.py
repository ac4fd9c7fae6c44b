"""Atomic file and folder writes, and the error type for bad input files.

Every output of the project goes through `atomic_path` or `atomic_dir`, so that an interrupted or failed
run never leaves a half-written file or dataset under the final name.
"""
import os
import re
import secrets
import shutil
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Union


class InputError(Exception):
    """Bad input (a file, folder or flag); the message names it and the problem. Entry scripts print it
    and exit with 2 (`util.cli.run_cli`); the checkpoint and pretrained-weights errors derive from it."""


def _temporary_sibling(path: Path) -> Path:
    """A unique hidden name beside `path` that keeps its suffix (so writers that infer formats work)."""
    return path.with_name(f".{path.stem}.{os.getpid()}-{secrets.token_hex(4)}.tmp{path.suffix}")


_TEMPORARY = re.compile(r"^\..+\.(\d+)-[0-9a-f]{8}\.tmp(\.[^.]+)?$")  # what _temporary_sibling names


def _process_alive(pid: int) -> bool:
    """Whether process `pid` runs here; this process's own id counts as gone (a restarted container often gets
    the id of the process that was killed, and nothing calls this while it writes)."""
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def remove_stale_temporaries(folder: Union[str, Path]) -> list[Path]:
    """Delete the temporary files and folders in `folder` that a killed process was writing (their process
    is gone; a live one's are kept), so that a rerun leaves no trace of the kill. Returns what was removed."""
    removed = []
    for entry in sorted(Path(folder).iterdir()) if Path(folder).is_dir() else []:
        match = _TEMPORARY.match(entry.name)
        if match is None or _process_alive(int(match.group(1))):
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)
        removed.append(entry)
    return removed


@contextmanager
def atomic_path(path: Union[str, Path]) -> Iterator[Path]:
    """Yield a temporary sibling of `path` to write; it is renamed onto `path` on success, removed on error."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = _temporary_sibling(path)
    try:
        yield temporary
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def check_output_folder(path: Union[str, Path], flag: str = "--output") -> None:
    """An InputError naming `path` when it cannot be an output folder: it, or the nearest part of it that
    exists, is a file, or that part cannot be written. Checked before any work is done."""
    path = Path(path)
    existing = next(p for p in (path, *path.parents) if p.exists() or p == Path(p.anchor))
    if not existing.is_dir():
        where = "is a file" if existing == path else f"cannot be made: {existing} is a file"
        raise InputError(f"{flag} {path}: {where}, not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise InputError(f"{flag} {path}: {existing} is not writable")


@contextmanager
def atomic_dir(path: Union[str, Path]) -> Iterator[Path]:
    """Yield a new temporary sibling folder; on success it replaces `path` (an existing folder is removed).

    On error the temporary folder is deleted and `path` is left as it was.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = _temporary_sibling(path)
    temporary.mkdir()
    try:
        yield temporary
    except BaseException:
        shutil.rmtree(temporary, ignore_errors=True)
        raise
    _move_into_place(temporary, path)


def _move_into_place(temporary: Path, path: Path) -> None:
    """Rename `temporary` onto `path`, first moving an existing `path` aside and deleting it afterwards."""
    if not path.exists():
        os.replace(temporary, path)
        return
    old = _temporary_sibling(path)
    os.replace(path, old)
    try:
        os.replace(temporary, path)
    except OSError:
        os.replace(old, path)
        shutil.rmtree(temporary, ignore_errors=True)
        raise
    if old.is_dir():
        shutil.rmtree(old)
    else:
        old.unlink()
