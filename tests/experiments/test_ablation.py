"""experiments/ablation.py: the table's statistics and verdicts on made-up results."""
import math

import pytest

from experiments import ablation


def test_summary_statistics_and_verdicts():
    module = ablation
    results = []
    for seed, (last, only) in enumerate([(0.5, 0.4), (0.6, 0.48)]):
        for arch, similarity in module.NETWORKS:
            results.append({"arch": arch, "similarity": similarity, "seed": seed, "iterations": 10,
                            "every5_last": {"jf": last, "j": last, "f": last},
                            "every5": {"jf": only, "j": only, "f": only}})
    rows = module.summarise(results)
    first = rows[0]
    assert first["jf_mean"] == pytest.approx(0.55) and first["jf_std"] == pytest.approx(math.sqrt(0.005))
    effect, error, seeds = module.schedule_effect(results, "stm", "dot")
    assert (effect, seeds) == (pytest.approx(-0.11), 2) and error == pytest.approx(0.01)
    assert module.verdict(effect, error, -1) == "reproduced"
    assert module.verdict(effect, error, +1).startswith("the opposite")
    assert module.verdict(0.01, 0.01, +1).startswith("within the noise")
    assert module.verdict(0.05, math.nan, +1).startswith("one seed")
    single = module.summarise(results[:4])
    assert math.isnan(single[0]["jf_std"])
