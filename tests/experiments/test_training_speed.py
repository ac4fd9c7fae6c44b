"""experiments/training_speed.py: the speed probe of the ablation table times the recipe's training step."""
import argparse

from experiments.recipe import add_recipe_args, train_arguments
from experiments.training_speed import typical_step_seconds


def test_the_probe_times_a_training_step_of_the_recipe(tmp_path):
    parser = argparse.ArgumentParser()
    add_recipe_args(parser, iterations_flag=False)
    args = parser.parse_args(["--frame_size", "32", "48", "--train_frames", "5", "--batch", "1"])
    seconds = typical_step_seconds(train_arguments(args, 3, 10, tmp_path, 10), steps=1)
    assert 0 < seconds < 60
