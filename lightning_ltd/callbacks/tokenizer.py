"""Records in every checkpoint what encoded the training text, so evaluation reads text alike."""

from __future__ import annotations

from typing import Any

from lightning.pytorch.callbacks import Callback

CHECKPOINT_KEY = "tokenizer"


class TokenizerRecord(Callback):
    """Writes ``checkpoint["tokenizer"]``: ``"bytes"`` or the tokenizer folder's absolute path
    (the data module's ``tokenizer_source``; None for image data)."""

    def __init__(self, source: str | None) -> None:
        self.source = source

    def on_save_checkpoint(self, trainer: Any, pl_module: Any, checkpoint: dict[str, Any]) -> None:
        if self.source is not None:
            checkpoint[CHECKPOINT_KEY] = self.source
