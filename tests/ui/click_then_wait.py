"""Subprocess for the SIGKILL test: open the workstation, click one region, say so, then wait.

Run as ``python -m tests.ui.click_then_wait PROJECT READER_ID X Y``; prints "clicked" after the
click's save call has returned, then sleeps until killed.
"""
from __future__ import annotations

import os
import sys
import time

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


def main() -> None:
    from PySide6.QtCore import QPointF

    from storage.project import open_project
    from ui.app import make_app
    from ui.workstation import build_window

    folder, reader_id, x, y = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
    app = make_app()
    window = build_window(open_project(folder), reader_id)
    window.show()
    app.processEvents()
    window.choose_finding("haemorrhage")
    window.canvas.click_at(QPointF(x, y))   # the mouse-click path: canvas -> controller -> storage
    print("clicked", flush=True)
    while True:
        time.sleep(1)


if __name__ == "__main__":
    main()
