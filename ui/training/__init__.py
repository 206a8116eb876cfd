"""The in-clinic training panel (Qt): ``TrainingPanel``, ``open_training_window`` and a screenshot."""
from ui.training.panel import TrainingPanel
from ui.training.window import TrainingWindow, open_training_window, render_training_panel_screenshot

__all__ = ["TrainingPanel", "TrainingWindow", "open_training_window", "render_training_panel_screenshot"]
