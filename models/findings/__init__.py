"""Regionally guided finding networks: their data, training, reference labels and
activation maps."""
