"""training/config.py: the configuration in groups, saved flat by flag name, changed by flat name."""
import json

import pytest

from training.config import STAGES, TrainConfig, training_parser


def _config(*flags: str) -> TrainConfig:
    return TrainConfig.from_args(training_parser().parse_args(list(flags)))


def test_each_flag_lands_in_its_group():
    config = _config("--stage", "1", "--crop_size", "96", "--similarity", "dot", "--lr", "3e-5", "-i", "40",
                     "--steps", "30", "--minutes", "2", "--save_every", "7", "--sample_frames", "4", "--no_cbam")
    assert (config.data.kind, config.data.crop_size, config.data.clip.frames) == ("bl30k", 96, 4)
    assert (config.network.similarity, config.network.cbam, config.network.arch) == ("dot", False, "stcn")
    assert (config.optim.lr, config.optim.batch_size) == (3e-5, STAGES[1].batch_size)
    assert (config.schedule.iterations, config.schedule.steps, config.schedule.minutes) == (40, (30,), 2.0)
    assert config.log.save_every == 7


def test_saved_flat_under_the_flags_names_as_earlier_checkpoints():
    saved = json.loads(json.dumps(_config("--stage", "3", "--sample_frames", "4", "--synthetic", "32", "48",
                                          "8").to_json()))  # plain JSON
    assert (saved["data"], saved["sample_frames"], saved["max_targets"], saved["synthetic"]) == ("vos", 4, 2,
                                                                                                 [32, 48, 8])
    assert (saved["lr"], saved["iterations"], saved["arch"], saved["save_dir"]) == (1e-5, 150_000, "stcn", "saves")
    assert not {"kind", "clip", "optim", "network"} & set(saved)


def test_replaced_changes_a_setting_by_its_flat_name():
    config = _config("--stage", "3")
    changed = config.replaced(lr=1e-3, iterations=12, channels_last=True, resume=None)
    assert (changed.optim.lr, changed.schedule.iterations, changed.network.channels_last) == (1e-3, 12, True)
    assert changed.data == config.data and config.optim.lr == 1e-5  # the rest, and the original, unchanged
    with pytest.raises(KeyError, match="no training setting 'learning_rate'"):
        config.replaced(learning_rate=1.0)
    as_saved = config.replaced(sample_frames=4, data="bl30k")  # the names of to_json
    assert (as_saved.data.clip.frames, as_saved.data.clip.max_targets, as_saved.data.kind) == (4, 2, "bl30k")
    with pytest.raises(KeyError, match="no training setting 'optim'"):
        config.replaced(optim=None)


def test_validations_between_the_start_and_the_end(tmp_path):
    def points(*flags):
        config = _config("--stage", "3", "-i", "450", "--val_root", str(tmp_path), *flags)
        return [i for i in range(1, 470) if config.validates_at(i)]
    assert points("--val_points", "5") == [90, 180, 270, 360]  # the fifth at the end
    assert points("--val_every", "150") == [150, 300, 450]
    assert points("--val_every", "150", "--minutes", "1") == [150, 300, 450]  # an interval stays one
    assert points("--val_points", "5", "--minutes", "1") == []  # the budget places them at its shares
