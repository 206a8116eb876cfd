"""Metrics: classification (AUROC, operating points, activation-in-regions, confusion matrices) and
segmentation (Dice, pixel AUPR)."""
