import pytest
import torch

from models.engine.device import DistributedWorld, describe_device, pick_device
from storage.errors import OctantError


def test_cpu_preference_is_honoured():
    assert pick_device("cpu") == torch.device("cpu")


def test_auto_picks_cuda_only_when_present(monkeypatch):
    monkeypatch.delenv("OCTANT_DEVICE", raising=False)
    expected = "cuda" if torch.cuda.is_available() else None
    if expected:
        assert pick_device().type == "cuda"
    else:
        assert pick_device().type in ("cpu", "mps")


def test_environment_variable_pins_the_device(monkeypatch):
    monkeypatch.setenv("OCTANT_DEVICE", "cpu")
    assert pick_device() == torch.device("cpu")


def test_unavailable_cuda_is_refused_with_advice(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(OctantError, match="choose the device 'cpu'"):
        pick_device("cuda")


def test_unknown_device_names_the_choices():
    with pytest.raises(OctantError, match="choose 'auto', 'cpu'"):
        pick_device("tpu")


def test_cpu_description_counts_threads():
    assert describe_device(torch.device("cpu")).startswith("CPU (")


def test_single_process_world_is_inactive(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    world = DistributedWorld()
    model = torch.nn.Linear(2, 1)
    assert not world.active and world.rank == 0 and world.wrap(model) is model
    assert world.agree("stopped_early") == "stopped_early"


@pytest.mark.parametrize("cores", [1, 2, 3, 4, 8, 16, 64])
@pytest.mark.parametrize("gpu", [False, True])
def test_threads_never_outnumber_the_cores(cores, gpu):
    from models.engine.device import thread_plan

    for gui in (False, True):
        plan = thread_plan(gui=gui, cores=cores, gpu=gpu)
        busy = plan.network + plan.decode + plan.write + plan.interactive
        assert plan.network >= 1 and (busy <= cores or cores == 1)
        assert plan.opencv == 1 or (plan.decode == plan.write == 0 and plan.opencv == plan.network)
    assert thread_plan(gui=True, cores=cores, gpu=gpu).interactive == 1   # the reader keeps a core


def test_two_cores_give_the_networks_both_and_decode_in_turn(monkeypatch):
    from models.engine.device import configure_threads, thread_plan
    from models.segmentation.presegment import helper_pool

    assert thread_plan(cores=2, gpu=False) == thread_plan(cores=2, gpu=False).__class__(2, 2, 0, 0, 2, 0)
    assert thread_plan(gui=True, cores=2, gpu=False).network == 1
    monkeypatch.setenv("OCTANT_THREADS", "2")
    threads = torch.get_num_threads()
    try:
        plan = configure_threads()
        assert torch.get_num_threads() == plan.network == (2 if not torch.cuda.is_available() else plan.network)
    finally:
        torch.set_num_threads(threads)
    with helper_pool(0) as in_turn:
        assert in_turn.submit(sum, [1, 2]).result() == 3
        failed = in_turn.submit(int, "x")
        assert isinstance(failed.exception(), ValueError)


def test_processes_torchrun_starts_on_one_machine_share_its_cores(monkeypatch):
    from models.engine.device import usable_cores

    monkeypatch.delenv("OCTANT_THREADS", raising=False)
    monkeypatch.delenv("LOCAL_WORLD_SIZE", raising=False)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    alone = usable_cores()
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "2")
    monkeypatch.setenv("OMP_NUM_THREADS", "1")   # torchrun's own default, not the user's: cores shared as before
    assert usable_cores() == max(1, alone // 2)
    monkeypatch.setenv("OCTANT_THREADS", "3")   # asked for explicitly: as asked
    assert usable_cores() == 3


def test_a_single_process_takes_the_threads_omp_num_threads_asks_for(monkeypatch):
    from models.engine.device import thread_plan, usable_cores

    monkeypatch.delenv("OCTANT_THREADS", raising=False)
    monkeypatch.delenv("LOCAL_WORLD_SIZE", raising=False)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")   # one core asked for on a shared machine
    assert usable_cores() == 1 and thread_plan(gpu=False).network == 1
    monkeypatch.delenv("OMP_NUM_THREADS")
    alone = usable_cores()
    monkeypatch.setenv("OMP_NUM_THREADS", "junk")   # not a count: the cores the OS gives
    assert usable_cores() == alone
    monkeypatch.setenv("OCTANT_THREADS", "2")   # Octant's own variable wins
    assert usable_cores() == 2
