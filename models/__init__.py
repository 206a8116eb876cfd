"""Networks: the engine that trains and runs them, the segmentation networks behind pre-segmentation,
the guided finding networks, the attention-mask diagnosis network, their metrics and their commands."""
