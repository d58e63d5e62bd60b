"""Jobs that share the machine: every computing ddpm-tui process registers, and takes its share of the cores.

PyTorch gives each process one compute thread per core. Two processes on two cores then run four threads,
and every small operator's barrier waits for a thread the OS has descheduled: each job runs 4 to 10 times
slower, far worse than taking turns. So a process that computes (training, sampling, scoring, the app's
heavy work) registers itself in a per-user folder, with its pid, kind and start time, and sizes its
intra-op threads to the cores it may use divided by the live jobs, pinned to cores of its own where the
OS allows it. It looks again between steps (:func:`tick`, at most every :data:`RECHECK_S`), so a job that
starts or ends lets the others resize within a step or two. Entries of dead processes are ignored and
removed. ``--threads N`` fixes a job's threads; torchrun's processes keep the share torchrun gave them.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch

from .memory import keep_freed_memory

RECHECK_S = 0.25


@dataclass(frozen=True)
class Job:
    pid: int
    kind: str
    started: float


@dataclass(frozen=True)
class Share:
    """What this process runs with: ``threads`` of the machine's ``cores``, beside ``jobs`` live jobs."""

    threads: int
    jobs: int
    cores: int
    fixed: bool = False

    def describe(self) -> str:
        """E.g. "2 jobs share 2 cores: 1 thread each", for the Train dashboard."""
        threads = f"{self.threads} thread{'s' if self.threads != 1 else ''}"
        if self.fixed:
            return f"{threads}, as --threads asks"
        if self.jobs == 1:
            return f"{threads}, the only job on {self.cores} cores"
        return f"{self.jobs} jobs share {self.cores} cores: {threads} each"


def job_folder() -> Path:
    """Where jobs register: ``$DDPM_TUI_RUNTIME``, else ``$XDG_RUNTIME_DIR/ddpm-tui/jobs``, else a folder of
    this user's in the temporary directory."""
    if os.environ.get("DDPM_TUI_RUNTIME"):
        return Path(os.environ["DDPM_TUI_RUNTIME"])
    if os.environ.get("XDG_RUNTIME_DIR"):
        return Path(os.environ["XDG_RUNTIME_DIR"]) / "ddpm-tui" / "jobs"
    return Path(tempfile.gettempdir()) / f"ddpm-tui-{os.getuid() if hasattr(os, 'getuid') else 'user'}" / "jobs"


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process with that pid: alive, but not one of ours
        return True
    return True


def live_jobs(folder: Path | None = None) -> list[Job]:
    """The registered jobs whose processes are alive, oldest first; the entries of dead ones are removed."""
    folder = folder or job_folder()
    jobs = []
    for path in folder.glob("*.json"):
        try:
            job = Job(**json.loads(path.read_text()))
        except (OSError, ValueError, TypeError):
            continue  # being written, or not ours
        if alive(job.pid):
            jobs.append(job)
        else:
            path.unlink(missing_ok=True)
    return sorted(jobs, key=lambda job: (job.started, job.pid))


def machine_cores() -> list[int]:
    """The cores this process may use, as the OS first gave them (before any pinning of ours)."""
    return sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else list(range(os.cpu_count() or 1))


class JobShare:
    """This process's registration, and its share of :func:`machine_cores` among the live jobs."""

    def __init__(self, kind: str, threads: int | None = None) -> None:
        self.folder = job_folder()
        self.cores = machine_cores()
        self.before = (torch.get_num_threads(), list(self.cores))
        self.fixed = threads
        self.job = Job(os.getpid(), kind, time.time())
        self.path = self.folder / f"{self.job.pid}.json"
        self.share = Share(torch.get_num_threads(), 1, len(self.cores))
        self.checked = 0.0

    def __enter__(self) -> JobShare:
        self.folder.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_suffix(".tmp")
        temporary.write_text(json.dumps(self.job.__dict__))
        temporary.replace(self.path)
        self.resize()
        return self

    def __exit__(self, *exc: object) -> None:
        self.path.unlink(missing_ok=True)
        threads, cores = self.before
        torch.set_num_threads(threads)
        _pin(cores)

    def tick(self) -> Share:
        """Resize if :data:`RECHECK_S` has passed since the last look; the share in force."""
        if time.monotonic() - self.checked >= RECHECK_S:
            self.resize()
        return self.share

    def resize(self) -> Share:
        """Threads and cores from the live jobs: an equal share each, at least one thread, the oldest job
        taking the first cores."""
        self.checked = time.monotonic()
        jobs = [job for job in live_jobs(self.folder) if job.pid != self.job.pid] + [self.job]
        jobs.sort(key=lambda job: (job.started, job.pid))
        count = len(self.cores)
        if self.fixed:
            share = Share(self.fixed, len(jobs), count, fixed=True)
        else:
            share = Share(max(1, count // len(jobs)), len(jobs), count)
            rank = jobs.index(self.job)
            _pin([self.cores[(rank * share.threads + i) % count] for i in range(share.threads)])
        if share.threads != torch.get_num_threads():
            torch.set_num_threads(share.threads)
        self.share = share
        return share


def _pin(cores: list[int]) -> None:
    """Run this process on ``cores``, where the OS lets a process choose."""
    if hasattr(os, "sched_setaffinity"):
        with contextlib.suppress(OSError):
            os.sched_setaffinity(0, cores)


_ACTIVE: list[JobShare] = []


@contextlib.contextmanager
def computing(kind: str, threads: int | None = None) -> Iterator[JobShare | None]:
    """Count this process as a job of ``kind`` while the block runs, with ``threads`` fixed or (None) its
    share of the cores, with freed tensors' memory kept for the next step's (:mod:`core.memory`). Nested blocks,
    and torchrun's processes, keep the share in force."""
    keep_freed_memory()
    if _ACTIVE or int(os.environ.get("LOCAL_WORLD_SIZE", "1")) > 1:
        yield _ACTIVE[0] if _ACTIVE else None
        return
    with JobShare(kind, threads) as share:
        _ACTIVE.append(share)
        try:
            yield share
        finally:
            _ACTIVE.remove(share)


def tick() -> Share | None:
    """Between steps: the share in force, resized if jobs came or went; None when this process is no job."""
    return _ACTIVE[0].tick() if _ACTIVE else None
