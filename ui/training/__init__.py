"""The in-clinic training panel (Qt): ``TrainingPanel``, ``open_training_window``."""
from ui.training.panel import TrainingPanel
from ui.training.window import TrainingWindow, open_training_window

__all__ = ["TrainingPanel", "TrainingWindow", "open_training_window"]
