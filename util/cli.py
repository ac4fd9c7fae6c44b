"""What every entry script does around its main: bad input ends with one line and exit code 2."""
import argparse
import os
import re
import sys
from pathlib import Path
from typing import Any, Callable

from util.fileio import InputError, check_output_folder


def run_cli(main: Callable[[], int]) -> None:
    """Run a script's main; an InputError (a bad file, folder, checkpoint or flag) is printed as one line
    naming the culprit, with exit code 2 and no traceback."""
    try:
        sys.exit(main())
    except InputError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)


class ArgumentParser(argparse.ArgumentParser):
    """argparse's parser whose errors end as every bad input does: the usage, then `error: <problem>` as the
    last line and exit code 2 (the InputError is printed by `run_cli`)."""

    def error(self, message: str) -> None:
        self.print_usage(sys.stderr)
        raise InputError(message)


Rule = tuple[Callable[[Any], bool], str]


def check_flags(args: argparse.Namespace, rules: dict[str, Rule]) -> None:
    """An InputError naming the first flag whose value breaks its rule (a flag left unset is not checked),
    so that a value that makes no sense stops the script before any work, not with a traceback later."""
    for name, (valid, expected) in rules.items():
        value = getattr(args, name, None)
        if value is not None and not valid(value):
            shown = " ".join(map(str, value)) if isinstance(value, (list, tuple)) else value
            raise InputError(f"--{name} {shown}: {expected}")


class Renamed(argparse.Action):
    """A flag's old name: still accepted (a documented command keeps working), with a note naming the new
    one. Add it beside the new flag with the same dest, `action=Renamed, new_name=...` and hidden help."""

    def __init__(self, option_strings: list[str], dest: str, new_name: str, **kwargs: Any) -> None:
        kwargs.setdefault("default", argparse.SUPPRESS)  # the new flag's default stands
        super().__init__(option_strings, dest, **kwargs)
        self.new_name = new_name

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        print(f"note: {option_string} is now {self.new_name}", file=sys.stderr)
        setattr(namespace, self.dest, values)


def at_least(minimum: float) -> Rule:
    return (lambda value: value >= minimum, f"must be at least {minimum:g}")


def positive() -> Rule:
    return (lambda value: value > 0, "must be positive")


def flag_values(arguments: list[str]) -> dict[str, str]:
    """A command line's flags as flag -> its values joined by spaces ("" for a switch); other words are skipped."""
    values: dict[str, str] = {}
    flag = None
    for token in arguments:
        if re.match(r"--?[a-z]", token):
            flag = token
            values[flag] = ""
        elif flag is not None:
            values[flag] = f"{values[flag]} {token}".strip()
    return values


# argparse types for path flags: a path that cannot serve stops the script as it parses its flags (exit 2,
# "argument --flag: <path>: <problem>"), before any work.
def existing_file(text: str) -> Path:
    path = Path(text)
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"{path}: is a folder, not a file")
    if not path.is_file():
        raise argparse.ArgumentTypeError(f"{path}: no such file")
    if not os.access(path, os.R_OK):
        raise argparse.ArgumentTypeError(f"{path}: cannot be read")
    return path


def weights_file(text: str) -> Path:
    """An existing weights or checkpoint file; a folder is named as such, with the hint users need."""
    if Path(text).is_dir():
        raise argparse.ArgumentTypeError(f"{text}: a folder, not a checkpoint file (give the .pth inside it)")
    return existing_file(text)


def existing_folder(text: str) -> Path:
    path = Path(text)
    if path.is_file():
        raise argparse.ArgumentTypeError(f"{path}: is a file, not a folder")
    if not path.is_dir():
        raise argparse.ArgumentTypeError(f"{path}: no such folder")
    return path


def output_folder(text: str) -> Path:
    """A folder to write into: it, or the nearest part of it that exists, is a writable folder."""
    try:
        check_output_folder(text, flag="")
    except InputError as error:
        raise argparse.ArgumentTypeError(str(error).strip()) from None
    return Path(text)


def output_file(text: str) -> Path:
    """A file to write: not a folder, and its folder can be made and written."""
    path = Path(text)
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"{path}: is a folder, not a file")
    output_folder(str(path.parent))
    return path
