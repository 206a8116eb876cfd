"""The command-line commands that train and run networks (train, train-seg, presegment)."""
