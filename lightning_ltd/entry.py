"""Around a ``@hydra.main`` task: bad overrides as one line, and the run folder locked before
Hydra writes into it.

Hydra reports a composition error (``ltd=foo``, ``foo=1``, ``model.lr=[1``) in several lines with
exit 1, and writes ``.hydra/`` and ``train.log`` into ``hydra.run.dir`` before the task starts:
a second run into a folder in use would overwrite the first run's ``.hydra/config.yaml`` before
``train`` could refuse it. ``launch`` asks Hydra to re-raise instead of reporting
(``HYDRA_FULL_ERROR``, only until the task starts and only if the user has not set it), prints
one line and exits 2; ``FolderLock``, a Hydra callback (``hydra.callbacks.folder_lock``), takes
the lock in ``on_run_start``, before the folder is written.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import Any

from hydra.errors import CompactHydraException
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from lightning_ltd.checks.lock import FolderInUseError, earlier_run_problem, hold, is_launching_rank, release_all
from lightning_ltd.cli import EXIT_BAD_INPUT, main
from lightning_ltd.console import OURS, RAISE_VARIABLE, end_composition_errors
from lightning_ltd.errors import first_line


def launch(hydra_main: Callable[[], Any]) -> None:
    """Run ``hydra_main`` (a ``@hydra.main`` function): a composition error is one line on
    stderr and exit 2; with ``HYDRA_FULL_ERROR=1`` set by the user, Hydra's own
    report stays."""
    ours = os.environ.get(RAISE_VARIABLE) is None or os.environ.get(OURS) == "1"
    if ours:
        os.environ[RAISE_VARIABLE] = os.environ[OURS] = "1"
    try:
        sys.argv[1:] = group_removals(sys.argv[1:])
        hydra_main()
    except CompactHydraException as err:
        if not ours:
            raise
        print(f"error: {one_line(err)}", file=sys.stderr)
        sys.exit(EXIT_BAD_INPUT)
    except (ValueError, TypeError) as err:  # Hydra's defaults list raises plain ones for some overrides
        if not ours or os.environ.get(OURS) != "1":  # the task had started: not a composition error
            raise
        suspects = [a for a in sys.argv[1:] if "=" in a and "." not in a.split("=", 1)[0]]  # group options
        print(f"error: {', '.join(suspects) or 'the overrides'}: {one_line(err)}", file=sys.stderr)
        sys.exit(EXIT_BAD_INPUT)
    finally:
        end_composition_errors()
        release_all()


OPTIONAL_GROUPS = ("logger", "lr", "callbacks", "experiment", "curriculum")
"""Groups a run can do without: ``logger=null`` drops the group, as Hydra's ``~logger`` does
(Hydra itself refuses ``null`` as a group's option)."""
REQUIRED_GROUPS = {
    "model": "model=gpt_small, bert_small, vit_digits, hf_causal_lm, ...",
    "data": "data=text, tokens, mlm, digits or imagefolder",
    "trainer": "trainer=cpu, gpu, ddp, ...",
    "ltd": "ltd=off trains without dropping",
}
"""Groups every run needs, with what to write instead of ``null``."""


class GroupRemovalError(CompactHydraException):
    """``GROUP=null`` for a group every run needs."""


def group_removals(arguments: list[str]) -> list[str]:
    """``logger=null`` as ``~logger`` for a group a run can do without; a needed group set to
    null is one line naming what to write instead."""
    rewritten = []
    for argument in arguments:
        group, _, value = argument.partition("=")
        if value in ("null", "~") and group in REQUIRED_GROUPS:
            raise GroupRemovalError(f"{group}=null: every run needs one {group} option ({REQUIRED_GROUPS[group]})")
        rewritten.append(f"~{group}" if value == "null" and group in OPTIONAL_GROUPS else argument)
    return rewritten


def one_line(err: BaseException) -> str:
    """Hydra's message (lines joined, its config search path left out) and the OmegaConf error
    behind it, on one line."""
    lines: list[str] = []
    for line in (line.strip() for line in str(err).splitlines()):
        if line.startswith("Config search path"):
            break
        if line:  # the options Hydra lists one per line after "Available options in 'ltd':"
            options_follow = bool(lines) and (lines[-1].endswith(":") or lines[-1].endswith(","))
            lines.append(f"{lines.pop()} {line}," if options_follow else line)
    message = " ".join(lines).rstrip(",") or type(err).__name__
    override = getattr(err, "override", None)
    if override:
        message = f"{override}: {message}"
    options = getattr(err, "options", None)
    if options and "Available options" not in message:
        message += f" (available: {', '.join(options)})"
    cause = err.__cause__
    if isinstance(cause, OmegaConfBaseException) and str(cause).strip():
        message += f" ({first_line(cause, 1000)})"
    return message


class FolderLock(Callback):
    """Lock ``hydra.run.dir`` before Hydra writes into it; ``train`` continues under the lock and
    releases it. Removes ``launch``'s ``HYDRA_FULL_ERROR`` when the task starts."""

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        folder = OmegaConf.select(config, "hydra.run.dir", default=None)
        if not isinstance(folder, str) or not is_launching_rank():
            return
        if not folder.strip():  # Hydra would run in the current folder, a repository's root included
            print(f"error: hydra.run.dir={folder!r} is empty: name the run's folder", file=sys.stderr)
            sys.exit(EXIT_BAD_INPUT)
        try:
            hold(folder)
        except (FolderInUseError, OSError) as err:  # Hydra turns a callback's exception into a warning
            reason = f"cannot create it ({err.strerror})" if isinstance(err, OSError) and err.strerror else err
            print(f"error: hydra.run.dir={folder!r}: {reason}", file=sys.stderr)
            sys.exit(EXIT_BAD_INPUT)
        if (earlier := earlier_run_problem(folder, config.get("ckpt_path") is not None)) is not None:
            print(f"error: hydra.run.dir={folder!r} {earlier}", file=sys.stderr)
            sys.exit(EXIT_BAD_INPUT)

    def on_job_start(self, config: DictConfig, **kwargs: Any) -> None:
        end_composition_errors()


def train_main() -> None:
    """``lightning-ltd-train``: ``cli.main`` with one-line composition errors."""
    launch(main)
