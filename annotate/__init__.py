"""Annotation: pure algorithms (geometry, field of view, consensus, agreement, overlays) here;
database and file services (import, export, demo, commands) in ``annotate.services``."""
