"""The Hydra configs of lightning-ltd, installed as ``pkg://lightning_ltd.conf`` (the source is the
repository's top-level ``conf/``)."""
