"""util/cli.py: reading a command line back as flags (how demo runs and their recipes are compared)."""
from util.cli import flag_values


def test_flag_values_keep_multi_word_values_switches_and_negative_numbers():
    command = ["python", "train.py", "--synthetic", "96", "160", "20", "--no_pretrained", "-i", "212", "--lr", "2e-4",
               "--seed", "-1"]
    assert flag_values(command) == {"--synthetic": "96 160 20", "--no_pretrained": "", "-i": "212", "--lr": "2e-4",
                                    "--seed": "-1"}
