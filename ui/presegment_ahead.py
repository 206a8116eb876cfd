"""Pre-segmentation ahead of the reader: the images of their queue that have no pre-segmentation
yet go through the pipeline on a background thread, in queue order from the open image on (GPU
batches where there is a GPU), so disc, fovea, regions, suggestions and overlays are there when the
reader reaches them. Each image's result is stored (``models.segmentation.presegment.presegment_project``)
before the next batch starts; stopping keeps every finished image, and a later pass skips them.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import QObject, Signal

from storage.project import ProjectHandle
from ui.background import Worker


@dataclass(frozen=True)
class NetworksLine:
    """The backend and precision the loaded networks compute in, and why (``PipelineModels.backend_line``)."""
    text: str


class PresegmentAhead(QObject):
    imageReady = Signal(int)      # an image's pre-segmentation is stored
    status = Signal(str)          # one line for the status bar ("" when there is nothing to say)
    networks = Signal(str)        # the NetworksLine's text, once the networks are loaded
    stopped = Signal()            # the pass ended: finished, cancelled or failed

    def __init__(self, project: ProjectHandle, parent: QObject | None = None,
                 weights_dir: Path | None = None, device: str | None = None):
        super().__init__(parent)
        self.project, self.weights_dir, self.device = project, weights_dir, device
        self.run: Worker | None = None
        self.without: list[str] = []   # networks this pass ran without (weights missing or damaged)

    def running(self) -> bool:
        """From ``start`` until the pass's outcome has arrived."""
        return self.run is not None and self.run.is_running

    def start(self, image_ids: list[int]) -> None:
        """Pre-segment ``image_ids`` in this order (those already done are skipped quickly)."""
        if self.running() or not image_ids:
            return
        self.without = []
        self.run = Worker(self._job(list(image_ids)), name="Pre-segmentation", owner=self)
        self.run.yielded.connect(self._on_progress)
        self.run.returned.connect(self._on_finished)
        self.run.errored.connect(self._on_failed)
        self.run.aborted.connect(self._on_failed)
        self.run.start()
        self.status.emit("Pre-segmenting your queue ahead of you…")

    def cancel(self) -> None:
        if self.run is not None:
            self.run.cancel()

    def shutdown(self, msecs: int = 1000) -> None:
        """Stop for the window's close: the photo in hand is dropped (those finished are saved).
        The cancel is seen within a second; a thread still starting up (importing torch) is
        joined when the application quits (``ui.background``)."""
        if self.run is not None:
            self.run.cancel()
            self.run.wait(msecs)

    def _job(self, image_ids: list[int]):
        project, weights_dir, device = self.project, self.weights_dir, self.device

        def job(progress, cancel):
            from models.engine.cancel import check_cancelled  # torch's import: seconds, not interruptible
            check_cancelled(cancel)
            from models.engine.device import configure_threads
            from models.segmentation.pipeline import load_pipeline_models  # smp and timm: seconds more
            from models.segmentation.presegment import presegment_project

            configure_threads(gui=True)   # this thread's networks leave a core to the reader

            models, messages = load_pipeline_models(weights_dir, device, cancel=cancel)
            progress(NetworksLine(models.backend_line()))
            for line in messages:
                progress(line)
            return presegment_project(project, None, models, progress=progress, cancel=cancel, image_ids=image_ids)
        return job

    def _on_progress(self, event) -> None:
        if isinstance(event, NetworksLine):
            self.networks.emit(event.text)
            self.status.emit(event.text)
            return
        if isinstance(event, str):   # a network whose weights are missing: said once, work goes on without it
            self.without.append(event.split(":", 1)[0])   # "lesions: no lesions weights at …"
            self.status.emit(f"Pre-segmentation: {event}")
            return
        if event.status == "done" and event.image_id is not None:
            self.imageReady.emit(event.image_id)
        if event.status == "failed":
            self.status.emit(f"Pre-segmentation skipped {Path(event.path).name}: {event.message}")
        elif event.done < event.total:
            self.status.emit(f"Pre-segmenting ahead: {event.done} of {event.total} images ready")

    def _on_finished(self, summary) -> None:
        unreadable = f", {len(summary.failed)} unreadable" if summary.failed else ""
        shared = f", {summary.elsewhere} by another workstation" if summary.elsewhere else ""
        # The missing weights were said once, then covered by the progress: the line that stays says it
        # (short: a permanent status-bar label takes its whole width from the hint beside it).
        named = ", ".join(self.without) if len(self.without) <= 2 else f"{len(self.without)} networks (README, Models)"
        without = f"; no usable weights for {named}" if self.without else ""
        self.status.emit(f"Pre-segmentation ready for your queue ({summary.done} new, "
                         f"{summary.skipped} done before{shared}{unreadable}){without}.")
        self.stopped.emit()

    def _on_failed(self, message: str) -> None:
        self.status.emit(message)   # cancelled ("run it again to continue") or a real failure
        self.stopped.emit()
