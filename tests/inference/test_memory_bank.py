"""The memory bank's buffer: growth, temporary entries and eviction."""
import torch

from inference.memory_bank import MemoryBank


def _entry(value: float, objects: int = 2):
    return torch.full((1, 4, 2, 3), value), torch.full((1, objects, 5, 2, 3), value)


def _frames(bank):
    keys, values = bank.memory()
    return keys[0, 0].view(-1, 6)[:, 0].tolist(), values[0, 1, 0].view(-1, 6)[:, 0].tolist()


def test_grows_beyond_initial_capacity():
    bank = MemoryBank(initial_capacity=2)
    for i in range(5):
        bank.add(*_entry(i))
    assert _frames(bank) == ([0, 1, 2, 3, 4], [0, 1, 2, 3, 4])


def test_keys_per_object_grow_beyond_initial_capacity_too():
    """STM's keys (1, K, Ck, h, w) carry the object axis: the buffer must grow along the frames axis."""
    bank = MemoryBank(initial_capacity=2)
    for i in range(11):
        key, value = _entry(i, objects=3)
        bank.add(key[:, None].expand(1, 3, 4, 2, 3), value)
    keys, values = bank.memory()
    assert keys.shape == (1, 3, 4, 11 * 6) and values.shape == (1, 3, 5, 11 * 6)
    assert keys[0, 2, 0].view(-1, 6)[:, 0].tolist() == list(range(11)) == values[0, 2, 0].view(-1, 6)[:, 0].tolist()


def test_temporary_entry_lives_until_the_next_addition():
    bank = MemoryBank()
    bank.add(*_entry(0))
    bank.add(*_entry(9), temporary=True)
    assert _frames(bank)[0] == [0, 9]
    bank.add(*_entry(8), temporary=True)
    assert _frames(bank)[0] == [0, 8]
    bank.add(*_entry(1))
    assert _frames(bank)[0] == [0, 1] and bank.num_frames == 2


def test_eviction_keeps_the_first_frame_and_drops_the_oldest():
    bank = MemoryBank(max_frames=3)
    for i in range(6):
        bank.add(*_entry(i))
    assert sorted(_frames(bank)[0]) == [0, 4, 5]
    bank.add(*_entry(9), temporary=True)
    assert sorted(_frames(bank)[0]) == [0, 4, 5, 9]
    single = MemoryBank(max_frames=1)
    for i in range(3):
        single.add(*_entry(i))
    assert _frames(single)[0] == [0]
