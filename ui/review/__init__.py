"""The reviewers' screen: readers, consensus and model side by side; agreement; disagreement queues."""
from ui.review.window import ReviewWindow, open_review_window

__all__ = ["ReviewWindow", "open_review_window"]
