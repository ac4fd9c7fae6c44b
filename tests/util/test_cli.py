"""Command-line helpers: reading flags back, and path flags checked as they are parsed."""
import argparse
import os

import pytest
from eval_helpers import run_script

from util.cli import existing_file, existing_folder, flag_values, output_file, output_folder


def test_flag_values_keep_multi_word_values_switches_and_negative_numbers():
    command = ["python", "train.py", "--synthetic", "96", "160", "20", "--no_pretrained", "-i", "212", "--lr", "2e-4",
               "--seed", "-1"]
    assert flag_values(command) == {"--synthetic": "96 160 20", "--no_pretrained": "", "-i": "212", "--lr": "2e-4",
                                    "--seed": "-1"}


def test_path_types_name_the_path_and_the_problem(tmp_path):
    (tmp_path / "file.pth").write_bytes(b"x")
    (tmp_path / "folder").mkdir()
    assert existing_file(str(tmp_path / "file.pth")) == tmp_path / "file.pth"
    assert existing_folder(str(tmp_path / "folder")) == tmp_path / "folder"
    assert output_folder(str(tmp_path / "new" / "deeper")) == tmp_path / "new" / "deeper"
    assert output_file(str(tmp_path / "new" / "table.md")) == tmp_path / "new" / "table.md"
    cases = [(existing_file, "missing.pth", "missing.pth: no such file"),
             (existing_file, "folder", "folder: is a folder, not a file"),
             (existing_folder, "missing", "missing: no such folder"),
             (existing_folder, "file.pth", "file.pth: is a file, not a folder"),
             (output_folder, "file.pth", "file.pth: is a file, not a folder"),
             (output_folder, "file.pth/sub", "cannot be made: " + str(tmp_path / "file.pth") + " is a file"),
             (output_file, "folder", "folder: is a folder, not a file"),
             (output_file, "file.pth/table.md", "is a file, not a folder")]
    for check, name, message in cases:
        with pytest.raises(argparse.ArgumentTypeError, match=message.replace(".", r"\.")):
            check(str(tmp_path / name))


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes anywhere")
def test_an_output_folder_that_cannot_be_written_is_named(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    with pytest.raises(argparse.ArgumentTypeError, match="locked is not writable"):
        output_folder(str(locked / "out"))


@pytest.mark.parametrize("script, flags, culprit", [
    ("eval_davis.py", ["--model", "{tmp}/missing.pth", "--output", "{tmp}/out"], "argument --model: {tmp}/missing.pth: no such file"),
    ("eval_generic.py", ["--model", "{tmp}", "--data_path", "{tmp}", "--output", "{tmp}/out"], "argument --model: {tmp}: a folder, not a checkpoint file (give the .pth inside it)"),
    ("train.py", ["--stage", "3", "--resume", "{tmp}/run_checkpoint.pth"], "argument --resume: {tmp}/run_checkpoint.pth: no such file"),
    ("scripts/merge_scores.py", ["--inputs", "{tmp}/a", "--output", "{tmp}/m"], "argument --inputs: {tmp}/a: no such folder"),
])
def test_scripts_check_path_flags_before_any_work(script, flags, culprit, tmp_path):
    result = run_script(script, *[flag.format(tmp=tmp_path) for flag in flags], check=False)
    last_line = result.stderr.strip().splitlines()[-1]
    assert result.returncode == 2 and last_line == "error: " + culprit.format(tmp=tmp_path)
    assert "Traceback" not in result.stderr and sorted(tmp_path.iterdir()) == []
