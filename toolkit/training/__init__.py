"""Training: splits, optimizers, losses and the loop that writes a run folder."""
