"""``python -m lightning_ltd.checks.reference OUT``: the configs page of the docs, written from
``conf/`` and from the declarations that check it (each key's type and range are the words of its
annotation, ``schema.describe``), so the page cannot say what the checks do not."""

from __future__ import annotations

import re
import sys
from importlib.resources import files
from pathlib import Path

import yaml
from omegaconf import DictConfig, ListConfig, OmegaConf

from lightning_ltd.checks.schema import describe
from lightning_ltd.checks.targets import constructor_hints
from lightning_ltd.console import CommandParser, boundary
from lightning_ltd.errors import writing

SKIPPED = ("hydra",)  # Hydra's own logging setup, not a choice a user makes
COMMENT = re.compile(r"^(\w+):.*?#\s*(.*)$")


def comments(text: str) -> dict[str, str]:
    """Each top-level key's trailing comment (what the YAML says about it)."""
    return {found.group(1): found.group(2) for line in text.splitlines() if (found := COMMENT.match(line))}


def cell(text: str) -> str:
    """Text for a table cell or a line: pipes and brackets escaped (``[CLS]`` is no link)."""
    return text.replace("|", "\\|").replace("[", "\\[").replace("]", "\\]").replace("\n", " ")


def option_table(name: str, text: str) -> list[str]:
    node = OmegaConf.create(text)
    header = []
    for line in text.splitlines():  # the file's opening comment
        if not line.startswith("#"):
            break
        if not line[1:].strip().startswith("@package"):  # Hydra's directive, not prose
            header.append(line[1:].strip())
    lines = [f"### `{name}`", ""] + ([cell(" ".join(header)), ""] if header else [])
    return lines + table(node, comments(text), "") if isinstance(node, DictConfig) else lines


def table(node: DictConfig, notes: dict[str, str], prefix: str) -> list[str]:
    """``node``'s keys with their defaults, what their ``_target_`` accepts and their comments;
    a nested object (a callback) gets a table of its own."""
    target = node.get("_target_")
    hints = constructor_hints(target) if target else {}
    rows, nested = [], []
    for key in (k for k in node if not str(k).startswith("_") and k != "defaults"):
        child = node._get_node(key)
        if isinstance(child, DictConfig) and "_target_" in child:
            nested += [f"#### `{prefix}{key}`", "", *table(child, {}, f"{prefix}{key}.")]
            continue
        raw = OmegaConf.to_container(child) if isinstance(child, (DictConfig, ListConfig)) else child._value()
        value = yaml.safe_dump(raw, default_flow_style=True, width=1000).strip().removesuffix("...").strip()
        accepts = describe(hints[key]) if key in hints else ""
        rows.append(f"| `{key}` | `{value.replace('|', '/')}` | {cell(accepts)} | {cell(notes.get(str(key), ''))} |")
    head = [f"`_target_: {target}`", ""] if target else []
    body = ["| key | default | accepts | note |", "|---|---|---|---|", *rows, ""] if rows else []
    return head + body + nested


def page() -> str:
    conf = files("lightning_ltd.conf")
    lines = [
        "# Configs and recipes",
        "",
        "Generated from `conf/` by `python -m lightning_ltd.checks.reference docs/configs.md`: every group,",
        "option and key, with what the checks accept (the words come from the same declarations).",
        "Choose an option with `group=option`, set a key with `group.key=value`.",
        "",
    ]
    groups = sorted(p.name for p in conf.iterdir() if p.is_dir() and p.name not in SKIPPED and p.name[0] != "_")
    for group in groups:
        lines += [f"## `{group}`", ""]
        for option in sorted(p for p in conf.joinpath(group).iterdir() if p.name.endswith(".yaml")):
            lines += option_table(f"{group}={option.name[:-5]}", option.read_text())
    return "\n".join(lines).rstrip() + "\n"


@boundary
def main(argv: list[str] | None = None) -> int:
    parser = CommandParser("lightning_ltd.checks.reference", __doc__)
    parser.add_argument("out", nargs="?", default="docs/configs.md", help="the page to write")
    out = parser.parse_args(argv).out
    with writing(out):
        Path(out).write_text(page())
    return 0


if __name__ == "__main__":
    sys.exit(main())
