"""experiments/inference_speed.py: variant names, per-architecture weights and when a speed-up is claimed."""
import argparse

import pytest

from experiments import inference_speed as benchmark


def test_inference_variants_name_the_architecture_decoding_and_precision():
    assert benchmark.parse_variant("stm+exact+amp", local=True) == {
        "arch": "stm", "local_decode": False, "margin": benchmark.local_decode.MARGIN, "amp": True, "compile": False}
    # --local_decode and the first --arch apply where a variant does not say otherwise
    assert benchmark.parse_variant("amp", "stm", local=True)["local_decode"]
    assert benchmark.parse_variant("local=3", "stm") == {
        "arch": "stm", "local_decode": True, "margin": 3, "amp": False, "compile": False}
    with pytest.raises(ValueError, match="unknown variant 'fast'"):
        benchmark.parse_variant("stcn+fast")
    shorthand = argparse.Namespace(compare=None, arch=["stcn", "stm"], amp=True)
    assert benchmark.variant_names(shorthand) == ["stcn", "stcn+amp", "stm", "stm+amp"]


def test_inference_benchmark_claims_a_speed_up_only_where_both_sides_track():
    fast, slow = {"fps": 3.0, "tracks": True}, {"fps": 2.0, "tracks": True}
    assert benchmark.speed_up(fast, slow) == "1.50x"
    assert benchmark.speed_up(fast, {**slow, "tracks": False}) == benchmark.NO_CLAIM
    assert benchmark.speed_up({**fast, "tracks": False}, slow) == benchmark.NO_CLAIM
