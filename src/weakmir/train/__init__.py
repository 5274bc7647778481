"""Training-engine glue: checkpoints, seeds, logging (the loop itself is an existing engine's)."""
