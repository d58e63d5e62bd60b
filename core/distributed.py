r"""Training one model on several processes: torchrun and DistributedDataParallel (DDP).

``torchrun --nproc_per_node N -m ddpm_tui train ...`` starts N copies of the trainer with ``RANK``,
``WORLD_SIZE``, ``LOCAL_RANK`` and a rendezvous address in their environment. Each copy joins one process
group (NCCL between GPUs, one GPU per local rank; gloo between CPUs) and then:

- draws the same data order, steps and noise as one process would (every process holds the same seed), so
  the batch is the same *global* batch ``--batch_size`` whatever the number of processes;
- trains on its contiguous slice of every batch, rank r taking rows
  :math:`[\lfloor rB/W \rfloor, \lfloor (r+1)B/W \rfloor)` of B rows on W processes;
- lets DDP average the gradients. Each process's loss is its rows' summed error times W/B, so the average
  over processes is the mean over the whole batch: the same gradient as one process on the whole batch;
- agrees with the others on stopping and pausing before every step (:meth:`Processes.agree`), so all act on
  the same step; rank 0 alone reads requests and writes the run folder.

Without torchrun, :data:`SINGLE` stands for the one process, and every collective is the identity.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


class DistributedError(RuntimeError):
    """The processes cannot train together (a batch that does not divide, a device missing)."""


@dataclass(frozen=True)
class Processes:
    """This process's place among the ``world_size`` processes training one model."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self) -> bool:
        """Rank 0: the one that reads requests, prints and writes the run folder."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    def shard(self, count: int) -> slice:
        """This process's contiguous rows of a batch of ``count`` (empty when ``count`` < world size)."""
        return slice(count * self.rank // self.world_size, count * (self.rank + 1) // self.world_size)

    def sum(self, value: torch.Tensor) -> torch.Tensor:
        """The sum of ``value`` over all processes (every process gets it)."""
        if self.distributed:
            value = value.clone()
            dist.all_reduce(value, op=dist.ReduceOp.SUM)
        return value

    def agree(self, *flags: bool) -> tuple[bool, ...]:
        """Each flag true on every process if it is true on any (an all-reduce of the maximum): a stop asked
        for by rank 0's request or by a Ctrl+C on any process reaches all of them before the same step."""
        if not self.distributed:
            return flags
        votes = torch.tensor([float(f) for f in flags], device=self.device)
        dist.all_reduce(votes, op=dist.ReduceOp.MAX)
        return tuple(bool(v) for v in votes.tolist())

    def barrier(self) -> None:
        """Wait until every process gets here (after rank 0's last write, so none exits before it)."""
        if self.distributed:
            dist.barrier()

    def wrap(self, model: torch.nn.Module) -> torch.nn.Module:
        """The model that training calls: DDP around ``model`` on several processes (it broadcasts rank 0's
        weights once and averages gradients during backward), ``model`` itself on one."""
        if not self.distributed:
            return model
        ids = [self.device.index] if self.device.type == "cuda" else None
        return torch.nn.parallel.DistributedDataParallel(model, device_ids=ids)


SINGLE = Processes()


def launched_by_torchrun() -> bool:
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def join(device: torch.device) -> Processes:
    """Join torchrun's process group when this process was started by it, else :data:`SINGLE` on ``device``.

    On CUDA each process takes the GPU of its local rank and the group uses NCCL; elsewhere gloo."""
    if not launched_by_torchrun():
        return Processes(device=device)
    rank, world, local = (int(os.environ[k]) for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK"))
    if device.type == "cuda":
        if local >= torch.cuda.device_count():
            raise DistributedError(
                f"local rank {local} has no GPU (this machine has {torch.cuda.device_count()}); "
                "start at most one process per GPU (--nproc_per_node)"
            )
        device = torch.device("cuda", local)
        torch.cuda.set_device(device)
    elif device.type != "cpu":
        raise DistributedError(f"training on several processes needs CUDA or the CPU, not {device.type}")
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return Processes(rank, world, local, device)


def leave(processes: Processes) -> None:
    """Leave the process group at the end of training (nothing for one process)."""
    if processes.distributed and dist.is_initialized():
        dist.destroy_process_group()
