"""The one place that decides where tensors live (architecture.md, "Device").

Preference order when nothing is asked for: CUDA, then Apple's MPS, then the CPU. A named
preference is honoured or refused with a sentence that says what to do; it is never silently
replaced, because a clinic that asked for the GPU should know when it is not being used.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch

from storage.errors import OctantError

DEVICE_ENV = "OCTANT_DEVICE"  # lets a command line or a test pin the device without code changes


def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def pick_device(preference: str | None = None) -> torch.device:
    """Return the device to compute on.

    ``preference`` is ``None``/``"auto"`` (best available; ``OCTANT_DEVICE`` if set), ``"cpu"``,
    ``"cuda"``, ``"cuda:<index>"`` or ``"mps"``. An unavailable choice raises ``OctantError``.
    """
    if preference is None or preference == "auto":
        preference = os.environ.get(DEVICE_ENV) or "auto"
    choice = preference.strip().lower()
    if choice == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", torch.cuda.current_device())
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    if choice == "cpu":
        return torch.device("cpu")
    if choice.startswith("cuda"):
        if not torch.cuda.is_available():
            raise OctantError(
                "No CUDA graphics card is usable on this computer; choose the device 'cpu' or 'auto'."
            )
        device = torch.device(choice)
        index = 0 if device.index is None else device.index
        if index >= torch.cuda.device_count():
            raise OctantError(
                f"This computer has {torch.cuda.device_count()} CUDA card(s), so '{preference}' "
                "does not exist; choose 'cuda:0' or 'auto'."
            )
        return torch.device("cuda", index)
    if choice == "mps":
        if not _mps_available():
            raise OctantError("Apple's MPS graphics backend is not available here; choose 'cpu' or 'auto'.")
        return torch.device("mps")
    raise OctantError(f"Unknown device '{preference}'; choose 'auto', 'cpu', 'cuda' or 'mps'.")


def describe_device(device: torch.device) -> str:
    """One line for a status bar or a model card, e.g. ``"CPU (2 threads)"``."""
    if device.type == "cuda":
        index = torch.cuda.current_device() if device.index is None else device.index
        props = torch.cuda.get_device_properties(index)
        return f"{props.name} (cuda:{index}, {props.total_memory / 2**30:.0f} GiB)"
    if device.type == "mps":
        return "Apple GPU (mps)"
    return f"CPU ({torch.get_num_threads()} threads)"


THREADS_ENV = "OCTANT_THREADS"   # cores Octant may use (default: OMP_NUM_THREADS, else those the OS gives)


@dataclass(frozen=True)
class ThreadPlan:
    """How the cores are shared, so that networks, photo decoding and writing, and the GUI never
    ask for more threads at once than there are cores (architecture.md, "Device")."""
    cores: int
    network: int       # torch intra-op threads (inter-op: 1; stages run one after another)
    decode: int        # photo decoders working beside the networks (0: decoded in turn, on the same thread)
    write: int         # mask writers working beside the networks (0: written in turn)
    opencv: int        # OpenCV's own threads per call
    interactive: int   # the GUI's own background pools (photo loading): the core kept for the reader


def usable_cores() -> int:
    """``OCTANT_THREADS``, else ``OMP_NUM_THREADS`` outside ``torchrun``, else the cores the OS gives
    this process, shared with the other processes ``torchrun`` started on this machine
    (``LOCAL_WORLD_SIZE``), so N processes never ask for N× the cores.

    OMP_NUM_THREADS is how a user of a shared machine asks for one core; ignoring it put two
    threads on a machine already busy, where each waits at every barrier for the other to be
    scheduled: a training step then cost 7× the CPU time (8.4 s against 1.2 s, 2026-12-04).
    torchrun sets it to 1 itself when unset, so under torchrun the cores are shared as before."""
    neighbours = os.environ.get("LOCAL_WORLD_SIZE", "").strip()
    under_torchrun = neighbours.isdigit() and int(neighbours) > 1
    for name in (THREADS_ENV,) if under_torchrun else (THREADS_ENV, "OMP_NUM_THREADS"):
        value = os.environ.get(name, "").strip()
        if value.isdigit() and int(value) > 0:
            return int(value)
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:   # macOS, Windows
        cores = os.cpu_count() or 1
    return max(1, cores // int(neighbours)) if under_torchrun else cores


def thread_plan(gui: bool = False, cores: int | None = None, gpu: bool | None = None) -> ThreadPlan:
    """The rule: in the GUI one core stays with the reader (the window and its photo loading);
    the rest go to the networks. On a CPU, decoding and writing get a thread each per eight cores
    left; below eight they run in turn with the networks, which would lose more from a core taken
    away than decoding alongside gains (a decode is ~0.1 s beside ~1 s of networks per photo).
    With a CUDA card the networks need one core to feed it, and decoding and writing the rest."""
    cores = max(1, cores or usable_cores())
    gpu = torch.cuda.is_available() if gpu is None else gpu
    interactive = 1 if gui else 0
    left = max(0, cores - interactive)
    helpers = (left - 1) // 2 if gpu else left // 8
    network = max(1, left - 2 * helpers)
    return ThreadPlan(cores, network, helpers, helpers, 1 if helpers else network, interactive)


_configured: ThreadPlan | None = None


def current_thread_plan() -> ThreadPlan:
    """The plan ``configure_threads`` applied last in this process (the default plan before)."""
    return _configured or thread_plan()


def configure_threads(gui: bool = False) -> ThreadPlan:
    """Apply ``thread_plan`` to torch and OpenCV; call it on every thread that runs networks (torch's
    thread count is per OpenMP thread): once at start-up and in the GUI's background worker."""
    import cv2

    global _configured
    plan = _configured = thread_plan(gui)
    torch.set_num_threads(plan.network)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:   # allowed once, before any parallel work; later calls keep the first value
        pass
    cv2.setNumThreads(plan.opencv)
    return plan


class DistributedWorld:
    """The processes of one command: a single process, or a group launched by ``torchrun``.

    Under ``torchrun`` (``WORLD_SIZE`` > 1) each process works on ``cuda:LOCAL_RANK`` with NCCL, or
    on the CPU with gloo. Training wraps the model in DistributedDataParallel, takes each epoch's
    shards from a DistributedSampler seeded like the single-process shuffle, and only rank 0 writes;
    pre-segmentation gives each process its ``shard`` of the photos and adds up the counts (``total``).
    """

    def __init__(self, preference: str | None = None):
        self.size = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        self.active = self.size > 1
        self.device = torch.device("cpu")
        if not self.active:
            return
        import torch.distributed as dist

        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        wants_cpu = (preference or os.environ.get(DEVICE_ENV) or "auto").lower() == "cpu"
        if torch.cuda.is_available() and not wants_cpu:
            torch.cuda.set_device(local_rank)
            self.device = torch.device("cuda", local_rank)
        if not dist.is_initialized():
            dist.init_process_group("nccl" if self.device.type == "cuda" else "gloo")

    def wrap(self, model: torch.nn.Module) -> torch.nn.Module:
        if not self.active:
            return model
        from torch.nn.parallel import DistributedDataParallel

        ids = [self.device.index] if self.device.type == "cuda" else None
        return DistributedDataParallel(model, device_ids=ids)

    def sampler(self, dataset, seed: int, epoch: int):
        from torch.utils.data.distributed import DistributedSampler

        sampler: DistributedSampler = DistributedSampler(dataset, num_replicas=self.size, rank=self.rank,
                                     shuffle=True, seed=seed)
        sampler.set_epoch(epoch)
        return sampler

    def agree(self, outcome: str) -> str:
        """Every rank follows rank 0's decision to stop, so no process waits forever on the others."""
        if not self.active:
            return outcome
        import torch.distributed as dist

        codes = ("", "stopped_early", "timed_out", "cancelled")
        flag = torch.tensor([codes.index(outcome)], device=self.device)
        dist.broadcast(flag, src=0)
        return codes[int(flag.item())]

    def shard(self, index: int) -> bool:
        """Whether item ``index`` of a list every process orders alike is this process's: rank r
        takes i % size == r, so the shards are disjoint, cover the list, and are the same on a rerun."""
        return index % self.size == self.rank

    def total(self, counts: list[int]) -> list[int]:
        """``counts`` added up over every process (each process gets the sums)."""
        if not self.active:
            return list(counts)
        import torch.distributed as dist

        summed = torch.tensor(counts, dtype=torch.int64, device=self.device)
        dist.all_reduce(summed)
        return [int(value) for value in summed.tolist()]

    def teardown(self) -> None:
        if self.active:
            import torch.distributed as dist

            dist.barrier()
            dist.destroy_process_group()
