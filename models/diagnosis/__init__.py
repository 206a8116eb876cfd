"""The segmentation-attention-mask diagnosis network: a diagnosis classifier that sees the photo through structure masks."""
