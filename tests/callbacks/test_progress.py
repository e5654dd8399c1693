"""A fit that takes no optimizer step is an error, whatever ended it (``cli.run``'s backstop)."""

import pytest
from torch.utils.data import DataLoader

from lightning_ltd.callbacks import TrainingProgress
from lightning_ltd.cli import NOTHING_TRAINED, ConfigError, build, run
from tests.conftest import compose_train


def no_epoch(trainer, datamodule) -> None:
    trainer.fit_loop.max_epochs = 0


def no_batch(trainer, datamodule) -> None:
    trainer.limit_train_batches = 0


def empty_loader(trainer, datamodule) -> None:
    datamodule.train_dataloader = lambda: DataLoader([])


@pytest.mark.slow  # about 1.5 s
@pytest.mark.parametrize("ending", [no_epoch, no_batch, empty_loader])
def test_a_fit_of_no_step_is_an_error(tmp_path, ending):
    """Each ends the fit before its first step; set on the built trainer and data module here,
    past the start checks, as a cause no check knows would be."""
    cfg = compose_train(tmp_path, "trainer.max_steps=2", "validate_before_fit=false")
    module, datamodule, trainer = build(cfg)
    ending(trainer, datamodule)
    with pytest.raises(ConfigError, match="ended before its first optimizer step") as err:
        run(cfg, module, datamodule, trainer)
    assert str(err.value) == NOTHING_TRAINED and "\n" not in NOTHING_TRAINED


def test_a_fit_that_steps_counts_its_own_steps(tmp_path):
    cfg = compose_train(tmp_path, "trainer.max_steps=2", "validate_before_fit=false")
    module, datamodule, trainer = build(cfg)
    run(cfg, module, datamodule, trainer)
    progress = next(c for c in trainer.callbacks if isinstance(c, TrainingProgress))
    assert (progress.start_step, progress.steps(trainer)) == (0, 2)
