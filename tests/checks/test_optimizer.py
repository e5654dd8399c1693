"""A checkpoint's optimizer and LR-scheduler states are checked against a fresh optimizer of the
run's: counts (Lightning's restore zips and so drops the rest), hyperparameter types, moment
shapes and the domain of sums of squares and counts."""

from __future__ import annotations

import copy

import lightning as L
import pytest
import torch

from lightning_ltd.checks.optimizer import fresh_optimizers, optimizer_problems


def trained_state(optimizer_class=torch.optim.AdamW, **kwargs) -> tuple[torch.optim.Optimizer, dict]:
    """An optimizer over two groups after one step, and its state_dict."""
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Linear(3, 2))
    groups = [{"params": [net[0].weight, net[1].weight], "weight_decay": 0.1}, {"params": [net[0].bias, net[1].bias]}]
    optimizer = optimizer_class(groups, lr=1e-3, **kwargs)
    net(torch.randn(5, 4)).square().sum().backward()
    optimizer.step()
    return optimizer, copy.deepcopy(optimizer.state_dict())


def fresh_like(optimizer: torch.optim.Optimizer) -> torch.optim.Optimizer:
    return type(optimizer)([{**g, "params": list(g["params"])} for g in optimizer.param_groups])


@pytest.mark.parametrize("optimizer_class", [torch.optim.AdamW, torch.optim.Adam, torch.optim.SGD, torch.optim.RMSprop])
def test_the_run_s_own_state_fits(optimizer_class):
    optimizer, state = trained_state(optimizer_class)
    assert optimizer_problems([state], 1, [fresh_like(optimizer)], 1) == []


def damage(state: dict, change) -> dict:
    damaged = copy.deepcopy(state)
    change(damaged)
    return damaged


CASES = [
    (lambda s: s["param_groups"][0].__setitem__("lr", "fast"), "param_groups[0].lr is 'fast', not a finite number"),
    (lambda s: s["param_groups"][1].__setitem__("eps", float("nan")), "param_groups[1].eps is nan, not a finite"),
    (lambda s: s["param_groups"][0].__setitem__("betas", (0.9,)), "param_groups[0].betas is (0.9,), not 2 finite"),
    (lambda s: s["param_groups"][0].__setitem__("amsgrad", 3), "param_groups[0].amsgrad is 3, not a flag"),
    (lambda s: s["param_groups"][0].__setitem__("lr", -1.0), "param_groups[0].lr is -1.0, negative where this run's"),
    (lambda s: s["param_groups"][1].__setitem__("betas", (0.9, -0.5)), "betas is [0.9, -0.5], negative where"),
    (lambda s: s["param_groups"][0].__setitem__("weight_decay", -0.1), "param_groups[0].weight_decay is -0.1, neg"),
    (lambda s: s["param_groups"][0]["params"].pop(), "param_groups: parameters per group [1, 2], this run's [2, 2]"),
    (lambda s: s["param_groups"].pop(), "param_groups: parameters per group [2], this run's [2, 2]"),
    (
        lambda s: s["state"][0].__setitem__("exp_avg_sq", -s["state"][0]["exp_avg_sq"] - 1),
        "state[0].exp_avg_sq holds neg",
    ),
    (lambda s: s["state"][1].__setitem__("step", torch.tensor(-3.0)), "state[1].step holds negative values"),
    (
        lambda s: s["state"][2].__setitem__("exp_avg", torch.zeros(7)),
        "state[2].exp_avg has shape [7], its parameter [3]",
    ),
    (lambda s: s["state"].__setitem__(9, s["state"][0]), "state[9]: no such parameter (this run's optimizer has 4)"),
    (lambda s: s.pop("param_groups"), "param_groups: missing (not an optimizer's state_dict)"),
]


@pytest.mark.parametrize("change, expected", CASES)
def test_a_damaged_state_is_named_by_its_key(change, expected):
    optimizer, state = trained_state()
    (problem,) = optimizer_problems([damage(state, change)], 1, [fresh_like(optimizer)], 1)
    assert problem.startswith("optimizer_states[0].") and expected in problem, problem


def test_fewer_states_than_optimizers_or_schedulers_are_named():
    """Lightning's restore zips the run's with the checkpoint's: the rest would restart silently."""
    optimizer, state = trained_state()
    assert optimizer_problems([], 1, [fresh_like(optimizer)], 1) == [
        "it holds 0 optimizer state(s), this run has 1 optimizer(s)"
    ]
    assert optimizer_problems([state], 0, [fresh_like(optimizer)], 1) == [
        "it holds 0 LR scheduler state(s), this run has 1"
    ]


def test_an_older_torch_s_missing_flags_and_name_keyed_states_pass():
    """``load_state_dict`` gives flags a newer torch added their defaults; FSDP's full optimizer
    state is keyed by parameter name, whose shapes are not compared (but signs are)."""
    optimizer, state = trained_state()
    older = damage(state, lambda s: [group.pop("decoupled_weight_decay", None) for group in s["param_groups"]])
    assert optimizer_problems([older], 1, [fresh_like(optimizer)], 1) == []
    named = damage(state, lambda s: s.__setitem__("state", {f"p{k}": v for k, v in s["state"].items()}))
    assert optimizer_problems([named], 1, [fresh_like(optimizer)], 1) == []
    named["state"]["p0"]["exp_avg_sq"] = -named["state"]["p0"]["exp_avg_sq"] - 1
    assert "state[p0].exp_avg_sq holds negative" in optimizer_problems([named], 1, [fresh_like(optimizer)], 1)[0]


class Configured(L.LightningModule):
    def __init__(self, returns: str) -> None:
        super().__init__()
        self.layer = torch.nn.Linear(2, 2)
        self.returns = returns

    def configure_optimizers(self):
        if self.returns == "trainer":
            return torch.optim.SGD(self.parameters(), lr=1.0 / self.trainer.max_steps)  # no trainer yet: raises
        optimizer = torch.optim.SGD(self.parameters(), lr=0.1)
        scheduler = torch.optim.lr_scheduler.StepLR(optimizer, 1)
        return {
            "optimizer": optimizer,
            "dict": {"optimizer": optimizer, "lr_scheduler": scheduler},
            "lists": ([optimizer, optimizer], [scheduler]),
            "dicts": [{"optimizer": optimizer, "lr_scheduler": scheduler}, {"optimizer": optimizer}],
        }[self.returns]


@pytest.mark.parametrize(
    "returns, optimizers, schedulers", [("optimizer", 1, 0), ("dict", 1, 1), ("lists", 2, 1), ("dicts", 2, 1)]
)
def test_fresh_optimizers_reads_every_form_lightning_takes(returns, optimizers, schedulers):
    found, count = fresh_optimizers(Configured(returns))
    assert len(found) == optimizers and all(isinstance(o, torch.optim.SGD) for o in found) and count == schedulers


def test_a_configure_optimizers_that_needs_a_trainer_is_skipped():
    assert fresh_optimizers(Configured("trainer")) is None
