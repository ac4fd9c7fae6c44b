"""Loading released and own weights: wrappers, DDP prefixes, stage-0 widening, clear failures."""
import json

import pytest
import torch

from model.checkpoint import CheckpointError, load_weights, save_weights, write_checkpoint
from model.network import STCN


@pytest.fixture(scope="module")
def multi_state():
    return STCN().state_dict()


@pytest.fixture(scope="module")
def single_state():
    return STCN(single_object=True).state_dict()


def _equal(model, state):
    return all(torch.equal(model.state_dict()[k], v) for k, v in state.items())


def test_raw_state_dict_file_round_trips(tmp_path, multi_state):
    path = tmp_path / "stcn.pth"
    torch.save(multi_state, path)
    net = STCN()
    load_weights(net, path)
    assert _equal(net, multi_state)
    save_weights(net, tmp_path / "again.pth")
    # the weights in the released layout, their card beside them, no temporary file left
    assert sorted(p.name for p in tmp_path.iterdir()) == ["again.pth", "again.pth.json", "stcn.pth"]
    assert torch.load(tmp_path / "again.pth").keys() == multi_state.keys()


def test_training_checkpoint_and_ddp_prefix_are_unwrapped(tmp_path, multi_state):
    wrapped = {"network": {f"module.{k}": v for k, v in multi_state.items()}, "iteration": 7,
               "optimizer": {"state": {}, "param_groups": []}}
    path = tmp_path / "run_checkpoint.pth"
    torch.save(wrapped, path)
    net = STCN()
    load_weights(net, path)
    assert _equal(net, multi_state)


@pytest.mark.parametrize("for_training", [False, True])
def test_stage0_weights_are_widened(single_state, for_training):
    net = STCN()
    load_weights(net, single_state, for_training=for_training)
    weight = net.value_encoder.conv1.weight.detach()
    assert torch.equal(weight[:, :4], single_state["value_encoder.conv1.weight"])
    extra = weight[:, 4:].flatten(start_dim=1)  # 64 x 49
    if for_training:  # orthogonal: the 49 columns are orthonormal
        torch.testing.assert_close(extra.T @ extra, torch.eye(49), atol=1e-5, rtol=0)
    else:
        assert torch.count_nonzero(extra) == 0


def test_stage0_weights_load_into_single_object_network(single_state):
    net = STCN(single_object=True)
    load_weights(net, single_state)
    assert _equal(net, single_state)


def test_wrong_key_fails_with_one_message_listing_keys(tmp_path, multi_state):
    state = dict(multi_state)
    state["decoder.extra.weight"] = state.pop("decoder.pred.weight")
    path = tmp_path / "bad.pth"
    torch.save(state, path)
    with pytest.raises(CheckpointError) as error:
        load_weights(STCN(), path)
    message = str(error.value)
    assert str(path) in message
    assert "missing keys: ['decoder.pred.weight']" in message
    assert "unexpected keys: ['decoder.extra.weight']" in message


def test_wrong_shape_and_unreadable_files_fail_clearly(tmp_path, multi_state):
    state = dict(multi_state)
    state["key_comp.bias"] = torch.zeros(3)
    with pytest.raises(CheckpointError, match=r"key_comp.bias \(3,\) != \(512,\)"):
        load_weights(STCN(), state)
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="garbage.pth: not a readable"):
        load_weights(STCN(), garbage)
    with pytest.raises(CheckpointError, match="no such checkpoint file"):
        load_weights(STCN(), tmp_path / "absent.pth")


def test_the_card_records_what_the_weights_do_not_show(tmp_path, multi_state):
    from model.checkpoint import card_path, read_checkpoint, resolve_spec
    from model.stm import STM

    net = STCN(similarity="dot", cbam=False)
    path = tmp_path / "dot.pth"
    save_weights(net, path, {"iteration": 5})
    card = json.loads(card_path(path).read_text())
    assert card["similarity"] == "dot" and card["arch"] == "stcn" and card["cbam"] is False and card["iteration"] == 5
    data = read_checkpoint(path)
    assert resolve_spec(path, data).similarity == "dot"  # no flag: as trained
    assert resolve_spec(path, data, "dot").similarity == "dot"
    with pytest.raises(CheckpointError, match=r"trained with --similarity dot .*--similarity l2 contradicts it"):
        resolve_spec(path, data, "l2")
    spec = resolve_spec(path, data)
    assert (spec.arch, spec.cbam) == ("stcn", False)  # from the weights themselves
    # the released layout (no card): the architecture's own similarity, or the flag
    released = tmp_path / "stcn.pth"
    torch.save(multi_state, released)
    assert resolve_spec(released, read_checkpoint(released)).similarity == "l2"
    assert resolve_spec(released, read_checkpoint(released), "dot").similarity == "dot"
    stm = tmp_path / "stm.pth"
    torch.save(STM().state_dict(), stm)
    assert resolve_spec(stm, read_checkpoint(stm)).similarity == "dot"
    # a full training checkpoint records its config
    full = tmp_path / "run_checkpoint.pth"
    torch.save({"network": multi_state, "optimizer": {}, "config": {"similarity": "dot"}}, full)
    assert resolve_spec(full, read_checkpoint(full)).similarity == "dot"
    # a broken card is named
    card_path(released).write_text("{not json")
    with pytest.raises(CheckpointError, match="stcn.pth.json: unreadable network card"):
        resolve_spec(released, read_checkpoint(released))


def test_a_failed_checkpoint_write_names_the_file_and_leaves_nothing(tmp_path, monkeypatch):
    def full_disk(state, path):
        open(path, "wb").write(b"partial")
        raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 470666368 vs 470666256")

    monkeypatch.setattr(torch, "save", full_disk)
    target = tmp_path / "run" / "run_checkpoint.pth"
    with pytest.raises(CheckpointError, match=r"run_checkpoint.pth: could not write the checkpoint \(.* GiB free"):
        write_checkpoint({"iteration": 3}, target)
    assert list((tmp_path / "run").iterdir()) == []  # neither the file nor its temporary sibling
