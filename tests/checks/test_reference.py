"""The configs page of the docs is what ``conf/`` and its declarations say today."""

from pathlib import Path

from lightning_ltd.checks.reference import page

ROOT = Path(__file__).resolve().parents[2]


def test_the_configs_page_is_generated_from_conf():
    committed = (ROOT / "docs" / "configs.md").read_text()
    assert committed == page(), "regenerate it: python -m lightning_ltd.checks.reference docs/configs.md"
    assert "| `min_keep` | `32` | a positive integer |" in committed  # a range from its declaration
    assert "### `logger=wandb`" in committed and "### `model=litgpt`" in committed
