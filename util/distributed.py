"""torchrun conventions: rank and world size from the environment, process group set-up, the device."""
import os
import resource
from contextlib import AbstractContextManager, nullcontext
from typing import Any

import torch
import torch.distributed as dist
from torch.distributed.constants import default_pg_timeout


def rank_and_world() -> tuple[int, int]:
    """(RANK, WORLD_SIZE) as torchrun sets them; (0, 1) for a plain process."""
    return int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))


def local_rank() -> int:
    return int(os.environ.get("LOCAL_RANK", 0))


def pick_device(choice: str = "auto") -> torch.device:
    """`auto` takes this process's GPU when there is one, else the CPU; `cuda` this process's GPU (LOCAL_RANK
    under torchrun), `cuda:N` GPU N."""
    if choice == "auto":
        choice = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(choice)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise RuntimeError(f"device {choice} was asked for but no CUDA device is available")
        return device if device.index is not None else torch.device("cuda", local_rank())
    return device


def init_distributed(device: torch.device) -> bool:
    """Join the torchrun process group (NCCL on CUDA, Gloo on the CPU); False without torchrun."""
    _, world = rank_and_world()
    if world == 1:
        return False
    if not dist.is_initialized():
        if device.type == "cuda":
            torch.cuda.set_device(device)
        rank, world = rank_and_world()
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo", store=_store_of_this_start(rank, world),
                                rank=rank, world_size=world)
    return True


def _store_of_this_start(rank: int, world: int) -> dist.Store:
    """The rendezvous store at MASTER_ADDR:MASTER_PORT (torchrun's agent serves it, else rank 0). torchrun keeps
    one store across --max_restarts, and a restarted group could read the address of a killed worker from it
    and fail to connect (pytorch/pytorch#167288): on one machine, where every worker has the same restart count,
    the keys are scoped to this start. Across machines the counts can differ (a node restarted for a membership
    change does not count it), so there the keys are torch's own."""
    agent_serves = os.environ.get("TORCHELASTIC_USE_AGENT_STORE") == "True"
    store = dist.TCPStore(os.environ.get("MASTER_ADDR", "127.0.0.1"), int(os.environ["MASTER_PORT"]), world,
                          is_master=rank == 0 and not agent_serves, timeout=default_pg_timeout, multi_tenant=True)
    one_machine = int(os.environ.get("LOCAL_WORLD_SIZE", world)) == world
    if not one_machine:
        return store
    return dist.PrefixStore(f"start{os.environ.get('TORCHELASTIC_RESTART_COUNT', '0')}", store)


def broadcast_from_rank0(value: Any) -> Any:
    """Rank 0's `value` (any picklable object) on every rank; `value` itself without a process group."""
    if not (dist.is_available() and dist.is_initialized()):
        return value
    holder = [value]
    dist.broadcast_object_list(holder, src=0)
    return holder[0]


def check_same_on_every_rank(value: int, what: str, device: torch.device) -> None:
    """Raise unless every rank holds the same `value` (say, the iteration all ranks resumed from): ranks that
    disagree would hang in their first collective instead."""
    if not (dist.is_available() and dist.is_initialized()):
        return
    low_high = torch.tensor([value, -value], dtype=torch.float64, device=device)
    dist.all_reduce(low_high, op=dist.ReduceOp.MIN)
    if low_high[0].item() != -low_high[1].item():
        raise RuntimeError(f"the processes disagree on the {what} (from {low_high[0].item():.0f} to "
                           f"{-low_high[1].item():.0f}): do they all see the same files?")


def barrier() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def cleanup() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def synchronise(device: torch.device) -> None:
    """Wait for queued GPU work, so that a timer measures it (no-op on the CPU)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def peak_memory_bytes(device: torch.device) -> int:
    """Peak memory so far: CUDA max-allocated on a GPU, the process's maximum RSS on the CPU."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device)
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def autocast(device: torch.device, enabled: bool) -> AbstractContextManager:
    """Mixed precision as the project uses it: fp16 autocast on CUDA, bf16 on the CPU; off if not enabled."""
    if not enabled:
        return nullcontext()
    return torch.autocast(device.type, dtype=torch.float16 if device.type == "cuda" else torch.bfloat16)
