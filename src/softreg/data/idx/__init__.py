"""IDX files (MNIST's format): reading them, the named datasets and their cache."""
