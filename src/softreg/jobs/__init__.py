"""What the command line's jobs do, above the run folder and the training core."""
