"""What the machine can hold (``lightning_ltd/machine.py``), and the start check that uses it."""

import os

from omegaconf import OmegaConf

from lightning_ltd.checks import machine
from lightning_ltd.checks.config import worker_problems


def test_the_machine_reports_its_memory_and_this_process_size():
    free, each = machine.available_memory(), machine.process_memory()
    assert free is not None and 2**28 < free < 2**44  # Linux: /proc/meminfo
    assert each is not None and 2**24 < each < free  # torch is imported: tens of MB at least
    assert machine.cores() == os.cpu_count()
    assert machine.gib(3 * 2**29) == "1.5 GiB"


def config(workers, devices=1):
    return OmegaConf.create({"data": {"num_workers": workers}, "trainer": {"devices": devices}})


def test_loader_workers_beyond_free_memory_are_refused_counting_every_local_rank(monkeypatch):
    monkeypatch.setattr(machine, "available_memory", lambda: 10 * 2**30)
    monkeypatch.setattr(machine, "process_memory", lambda: 2**30)
    assert worker_problems(config(10)) == []  # 10 GiB fit in 10 GiB
    assert worker_problems(config(11)) == [
        "data.num_workers=11: 11 loader processes of about 1.0 GiB each need 11.0 GiB, "
        "more than the 10.0 GiB free on this machine"
    ]
    assert worker_problems(config(4, devices=3))[0].startswith("data.num_workers=4: 12 loader processes")
    assert worker_problems(config(0)) == [] and worker_problems(config("abc")) == []  # the schema's to judge


def test_without_memory_figures_nothing_is_refused(monkeypatch):
    monkeypatch.setattr(machine, "available_memory", lambda: None)
    assert worker_problems(config(10**6)) == []
