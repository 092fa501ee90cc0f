"""Distributed helpers: process-group set-up under ``torchrun``, gathering with gradients.

``torchrun --nproc_per_node=K -m galexplorer train ...`` starts K processes with ``RANK``,
``WORLD_SIZE`` and ``LOCAL_RANK`` in their environment; :func:`init_distributed` joins them
(NCCL on CUDA, gloo on CPU). Without those variables everything runs in one process and the
helpers here are no-ops.

Our own collectives (the gathers, :func:`all_gather_object`, :func:`barrier`) run on a group of
their own, not on the default group that DistributedDataParallel uses. Why: once a DDP wrapper
has existed, torch keeps the default group alive (measured with torch 2.14; a DDP on another
group leaves that one freeable), so ``destroy_process_group`` cannot free it and its gloo
worker threads live until the process dies. Those threads must then never hold
the last reference to a tensor that Python made: one that drops it as the interpreter
finalizes waits for the GIL and is killed there, and the process aborts with "terminate called
without an active exception" after a correct run. DDP's traffic is its start-up broadcast,
long finished by then, and bucket all-reduces of buffers made in C++; the tensors Python makes
at the end of a run travel on our group, which :func:`shutdown` frees,
joining its threads while the interpreter is fully alive.
"""

from __future__ import annotations

import gc
import logging
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

log = logging.getLogger(__name__)

#: the group of our own collectives under torchrun (None: the default group)
_group = None


@dataclass
class DistInfo:
    """Where this process sits: ``rank`` of ``world_size`` (``local_rank`` on its node)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def launched_by_torchrun() -> bool:
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def init_distributed(device_type: str) -> DistInfo:
    """Join the process group that ``torchrun`` set up, or return a single-process DistInfo.

    Args:
        device_type: 'cuda' (NCCL backend, one GPU per process) or 'cpu' (gloo).
    """
    if not launched_by_torchrun():
        return DistInfo()
    global _group
    if not dist.is_initialized():
        backend = "nccl" if device_type == "cuda" else "gloo"
        dist.init_process_group(backend=backend)
        log.debug("joined process group: rank %d of %d (%s)", dist.get_rank(), dist.get_world_size(), backend)
    if _group is None:
        _group = dist.new_group()  # collective: every process gets here in the same order
    return DistInfo(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))


def shutdown(*, synchronise: bool = True) -> None:
    """Leave the process group (a no-op in one process).

    Waits for every process first (``synchronise``), so that none tears down while another
    still communicates with it; then frees the group of our own collectives, which joins its
    worker threads (see the module's docstring), and destroys the rest.

    Args:
        synchronise: False on an error path: the other processes may never reach the barrier.
    """
    global _group
    if not (dist.is_available() and dist.is_initialized()):
        return
    if synchronise and dist.get_world_size() > 1:
        dist.barrier(group=_group)
    if _group is not None:
        dist.destroy_process_group(_group)
        _group = None  # the last reference: the group is freed and its threads joined now
    dist.destroy_process_group()
    gc.collect()  # an object in a reference cycle that held a group would keep its threads


def world_size() -> int:
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def rank() -> int:
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def barrier() -> None:
    if world_size() > 1:
        dist.barrier(group=_group)


def all_reduce_mean(value: torch.Tensor) -> torch.Tensor:
    """The mean of ``value`` over all processes (``value`` itself in one process)."""
    if world_size() == 1:
        return value
    value = value.clone()
    dist.all_reduce(value, op=dist.ReduceOp.SUM, group=_group)
    return value / world_size()


def all_gather_object(obj) -> list:
    """``[obj of rank 0, obj of rank 1, ...]`` on every process (``[obj]`` in one process)."""
    if world_size() == 1:
        return [obj]
    out = [None] * world_size()
    dist.all_gather_object(out, obj, group=_group)
    return out


def parameter_fingerprint(module: torch.nn.Module) -> str:
    """sha256 of every parameter's bytes, in order: equal on all processes when DDP keeps the
    replicas in step (buffers such as batch-norm running statistics are per process on CPU)."""
    import hashlib

    h = hashlib.sha256()
    for p in module.parameters():
        h.update(p.detach().float().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def gather_with_grad(x: torch.Tensor) -> torch.Tensor:
    """(world_size * B, ...) concatenation of ``x`` (B, ...) from every process, rank order."""
    if world_size() == 1:
        return x
    # PyTorch's differentiable all-gather: the backward pass reduce-scatters the gradients, so
    # each process gets the sum over all processes of the gradient of its own slice
    from torch.distributed.nn.functional import all_gather

    return torch.cat(all_gather(x.contiguous(), group=dist.group.WORLD if _group is None else _group), dim=0)
