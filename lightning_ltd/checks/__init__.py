"""The refusals: every check of settings, data, checkpoints and folders, and the state they compare
(the run fingerprint, the one-run-per-folder lock). Nothing here trains; ``lightning_ltd.cli`` calls
these before anything is built or written."""
