"""The STM baseline: per-object keys and affinities, the shared training pass and inference core, and
the CBAM ablation; both recognised from their weights."""
import pytest
import torch

from inference.core import InferenceCore, MemorySchedule
from model import memory
from model.checkpoint import structure_from_state
from model.network import STCN, mask_channels
from model.stm import STM


@pytest.fixture(scope="module")
def stm():
    torch.manual_seed(0)
    return STM().eval()


def test_stm_encodes_a_key_and_a_value_per_object(stm):
    frame = torch.randn(1, 3, 64, 96)
    masks = torch.zeros(1, 3, 64, 96)
    masks[:, 0, :32], masks[:, 1, 32:], masks[:, 2, :, :10] = 1, 1, 1
    with torch.no_grad():
        key, value = stm.encode_memory(frame, None, masks)
        assert key.shape == (1, 3, 128, 4, 6) and value.shape == (1, 3, 512, 4, 6)
        # each object's key sees its own mask (and the others'): no two objects share keys
        assert (key[0, 0] - key[0, 1]).abs().max() > 1e-3
        alone, _ = stm.encode_memory(frame, None, masks[:, 1:2])
        others = masks[:, [0, 2]].sum(dim=1, keepdim=True)
        direct, _ = stm.memory_encoder(frame, torch.cat([masks[:, 1:2], others], dim=1))
        torch.testing.assert_close(key[0, 1], direct[0], rtol=1e-3, atol=1e-3)  # the other two as "others"
        assert (alone[0, 0] - key[0, 1]).abs().max() > 1e-2  # alone, it sees no other objects


def test_stm_readout_is_one_affinity_per_object(stm):
    gen = torch.Generator().manual_seed(1)
    query_key = torch.randn(1, 128, 3, 4, generator=gen)
    memory_key = torch.randn(1, 2, 128, 2, 3, 4, generator=gen)  # B, K, Ck, T, h, w
    memory_value = torch.randn(1, 2, 512, 2, 3, 4, generator=gen)
    for top_k in (0, 5):
        readout = stm.read_memory(query_key, memory_key, memory_value, top_k=top_k, query_chunk=5)
        for k in range(2):  # explicitly: object k's values weighted by its own affinity
            sim = memory.similarity(memory_key[:, k].flatten(2), query_key.flatten(2), "dot")
            expected = memory.readout(memory.affinity(sim, top_k), memory_value[:, k].flatten(2))
            torch.testing.assert_close(readout[:, k].flatten(2), expected, rtol=1e-4, atol=1e-5)


def test_stm_training_pass_and_inference_core_compute_the_same_thing(stm):
    torch.manual_seed(2)
    frames = torch.randn(1, 2, 3, 64, 64)
    masks = torch.zeros(1, 2, 64, 64)
    masks[:, 0, 8:30, 8:30], masks[:, 1, 34:60, 20:50] = 1, 1
    with torch.no_grad():
        out = stm(frames, masks)
    core = InferenceCore(stm, MemorySchedule(mem_every=5, top_k=0))
    labels = masks[0, 0] + 2 * masks[0, 1]
    core.step(frames[0, 0], labels.long())
    prob = core.step(frames[0, 1])
    assert core.groups[0].bank.memory()[0].shape == (1, 2, 128, 16)  # keys carry the object axis
    torch.testing.assert_close(prob[1:], out["mask_1"][0], rtol=1e-4, atol=1e-5)


def test_stm_core_handles_objects_that_appear_later(stm):
    torch.manual_seed(3)
    core = InferenceCore(stm, MemorySchedule(mem_every=2, include_last=True))
    first = torch.zeros(48, 64, dtype=torch.long)
    first[5:20, 5:20] = 1
    later = torch.zeros(48, 64, dtype=torch.long)
    later[25:40, 30:60] = 4
    for t in range(5):
        prob = core.step(torch.randn(3, 48, 64), first if t == 0 else later if t == 2 else None, is_last=t == 4)
        assert prob.shape == (1 + len(core.object_ids), 48, 64)
        torch.testing.assert_close(prob.sum(dim=0), torch.ones(48, 64))
    assert core.object_ids == [1, 4] and len(core.groups) == 2
    assert [g.bank.memory()[0].shape[1] for g in core.groups] == [1, 1]  # each group its own object keys


@pytest.mark.parametrize("network", ["stm", "stcn"])
def test_the_core_runs_past_the_memory_banks_first_allocation(stm, network):
    """More memory frames than the bank first allocates (8): STM's per-object keys grow as STCN's keys do."""
    net = stm if network == "stm" else STCN().eval()
    torch.manual_seed(4)
    core = InferenceCore(net, MemorySchedule(mem_every=1))
    first = torch.zeros(32, 48, dtype=torch.long)
    first[4:14, 4:20], first[18:28, 24:44] = 1, 2
    for t in range(10):
        prob = core.step(torch.randn(3, 32, 48), first if t == 0 else None)
        torch.testing.assert_close(prob.sum(dim=0), torch.ones(32, 48))
    assert core.groups[0].bank.num_frames == 10


def test_architectures_and_cbam_are_recognised_from_the_weights():
    assert structure_from_state(STCN().state_dict()) == {"arch": "stcn", "backbone": "resnet50", "cbam": True}
    no_cbam = STCN(cbam=False).state_dict()
    assert not any(".attention." in k for k in no_cbam)
    assert structure_from_state(no_cbam)["cbam"] is False
    assert structure_from_state(STM(single_object=True).state_dict())["arch"] == "stm"


def test_no_cbam_fusion_skips_the_attention_only():
    torch.manual_seed(4)
    with_cbam = STCN().eval()
    without = STCN(cbam=False).eval()
    without.load_state_dict({k: v for k, v in with_cbam.state_dict().items() if ".attention." not in k})
    frame, masks = torch.randn(1, 3, 32, 32), torch.rand(1, 2, 32, 32)
    with torch.no_grad():
        f16 = with_cbam.encode_key(frame).f16
        encoder = with_cbam.value_encoder
        x = encoder.maxpool(encoder.relu(encoder.bn1(encoder.conv1(
            torch.cat([frame.expand(2, -1, -1, -1), mask_channels(masks, single_object=False)], dim=1)))))
        x = encoder.layer3(encoder.layer2(encoder.layer1(x)))
        expected = encoder.fuser.block2(encoder.fuser.block1(torch.cat([x, f16.expand(2, -1, -1, -1)], dim=1)))
        _, value = without.encode_memory(frame, without.encode_key(frame), masks)
        _, value_cbam = with_cbam.encode_memory(frame, with_cbam.encode_key(frame), masks)
    torch.testing.assert_close(value[0], expected, rtol=1e-4, atol=1e-5)
    assert (value - value_cbam).abs().max() > 1e-4
