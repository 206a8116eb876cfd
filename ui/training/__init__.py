"""The in-clinic training panel (Qt): ``TrainingPanel``, ``open_training_window`` and a screenshot."""
from ui.training.panel import TrainingPanel, open_training_window, render_training_panel_screenshot

__all__ = ["TrainingPanel", "open_training_window", "render_training_panel_screenshot"]
