"""What a reader does, as calls: the one code path used by the window, the tests and the benches.

Every action goes straight to the signed-in reader's ``ReaderSession`` (one transaction each), so
it is durable when the call returns; the window only shows what the controller says. A save waits
for another program's lock a fifth of a second at most: a click that finds the database still
locked, or whose server cannot be reached, is kept and saved in order by ``ui/save_queue.py``
(the status bar says "Saving…" until it is in), and the reader stays on the image until their kept clicks are saved. Only a
ReaderSession is ever used here, never a ReviewSession: a reader sees their own answers and a
model's guesses, nothing of the other readers (blind reading, Son et al. §2.1: three readers per
image, independently).
"""
from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from PySide6.QtCore import QObject, QTimer, Signal

from storage.click_recovery import ReaderStep
from storage.errors import DatabaseLockedError, DatabaseUnreachableError, OctantError, StaleAnswerError
from storage.images import ImageRecord
from storage.labels import Landmarks, ReadState
from storage.project import ProjectHandle, ProjectSettings
from storage.reading import ReaderSession
from ui.assist import PRESEGMENTATION, ModelSuggestion, accepted, suggestion_from_payload
from ui.save_queue import SCREEN_WAIT_MS, KeptClick, SavedClick, SaveQueue
from ui.undo import ImageUndoStack, UndoEntry

KEPT_CLICKS_HINT = "Your last clicks are not saved yet (the database is busy or out of reach)"
BUSY_ELSEWHERE = "the database is busy in another program"
OUT_OF_REACH = "the database server cannot be reached; tried again until it answers"
REGIONS_NEED_LANDMARKS = ("Regions need the disc and fovea: click the centre of the optic disc, then the fovea "
                     "(one click each), or wait for the model to place them.")


class ReadingController(QObject):
    imageOpened = Signal(object, object, object)  # ImageRecord, ReadState, Landmarks | None shown
    stateChanged = Signal(object)                 # ReadState after an action, undo or redo
    saved = Signal(str)                           # status text after each durable write
    problem = Signal(str)                         # an OctantError's sentence
    stale = Signal(str)                           # undo/redo/accept refused: stored answer changed elsewhere
    refused = Signal(str)                         # an answer refused: photo not shown, or no disc and fovea
    hint = Signal(str)                            # what to do next (not an error)
    progressChanged = Signal(int, int)            # done, total
    findingChanged = Signal(object)               # finding code or None
    queueFinished = Signal()
    queueGrew = Signal(object)                    # the queue re-read: images were assigned since it was shown
    suggestionChanged = Signal(object)            # ModelSuggestion of the open image
    landmarksShown = Signal(object)               # the model's Landmarks, arrived after the image opened
    leaving = Signal()  # about to leave the open image: unsaved edits (comment) go in now
    readSaved = Signal(int, object)               # image id, ReadState: a kept click went in

    def __init__(self, project: ProjectHandle, reader_id: int, parent: QObject | None = None):
        super().__init__(parent)
        self.project = project
        self.session = ReaderSession(project.database, reader_id, lock_wait_ms=SCREEN_WAIT_MS)
        self.saves = SaveQueue(self.session, self, recovery_root=project.root)
        self.saves.outcome.connect(self._on_kept_click)
        self._kept = 0   # clicks kept, as the GUI thread has heard back
        self._kept_because = BUSY_ELSEWHERE   # why the last click was kept, as the status bar says
        self.settings: ProjectSettings = project.settings()
        self.findings = {f.code: f for f in self.settings.findings}
        self.image: ImageRecord | None = None
        self.state: ReadState | None = None
        self.shown_landmarks: Landmarks | None = None  # the reader's own, else the model's
        self._model_landmarks: Landmarks | None = None
        self.suggestion: ModelSuggestion | None = None  # the model's, hidden on test if set so
        self.photo_problem: str | None = None  # why the open image's photo could not be shown
        self.finding: str | None = None
        self._history: dict[int, ImageUndoStack] = {}
        self._queue_ids: list[int] | None = None
        self._records: dict[int, ImageRecord] = {}
        # While the window orders the queue off the GUI thread (the model's order at sign-in),
        # the session's kept order belongs to that job: the queue reads as empty meanwhile.
        self.queue_pending = False

    @property
    def reader(self):
        return self.session.reader

    # --- moving through the queue -----------------------------------------------------------
    def queue(self) -> list[ImageRecord]:
        return [record for record, _ in self.queue_status()]

    def queue_status(self) -> list[tuple[ImageRecord, bool]]:
        """The queue with each image's done flag, in one query (``ReaderSession.queue_status``)."""
        return self.take_queue(self.session.queue_status())

    def take_queue(self, status: list[tuple[ImageRecord, bool]]) -> list[tuple[ImageRecord, bool]]:
        """Keep the queue ``status`` (from ``queue_status``, or ordered in the background)."""
        self._queue_ids = [r.id for r, _ in status]
        self._records = {r.id: r for r, _ in status}  # opening an image needs no second query
        self.queue_pending = False
        return status

    def queue_ids(self) -> list[int]:
        if self.queue_pending:
            return []
        if self._queue_ids is None:
            return [record.id for record in self.queue()]   # queue() keeps them for the next call
        return self._queue_ids

    def record(self, image_id: int) -> ImageRecord:
        return self._records.get(image_id) or self.session.image(image_id)

    def start(self) -> None:
        """Open the first unfinished image (or the first image when all are done)."""
        target = self.session.next_unfinished()
        ids = self.queue_ids()
        if target is not None:
            self.open_image(target.id)
        elif ids:
            self.open_image(ids[0])
        self._emit_progress()

    def open_image(self, image_id: int) -> None:
        if self._held_by_kept_clicks("moving on"):
            return
        if self.image is not None and image_id != self.image.id:
            self.leaving.emit()
            self._leave_current()
        self._guard(lambda: self._open(image_id))

    def _open(self, image_id: int) -> None:
        self.image = self.record(image_id)
        self.photo_problem = None
        self.state = self.session.read(image_id)
        self._model_landmarks = self.session.model_landmarks(image_id)
        self.suggestion = None
        self.shown_landmarks = self.state.landmarks or self._model_landmarks
        self.imageOpened.emit(self.image, self.state, self.shown_landmarks)
        # Suggestions are not needed to start reading: fetched after the photo is up.
        QTimer.singleShot(0, self, lambda: self.load_suggestion(image_id))

    def load_suggestion(self, image_id: int) -> None:
        """The model's suggestion for the open image (None on test images if hidden)."""
        if self.image is None or self.image.id != image_id:
            return
        try:
            payload = self.session.suggestion(image_id, PRESEGMENTATION)
        except OctantError as error:
            self.problem.emit(str(error))
            return
        self.suggestion = suggestion_from_payload(payload, self.project.root)
        if self.suggestion is not None:
            self.suggestionChanged.emit(self.suggestion)

    def photo_not_shown(self, image_id: int, problem: str) -> None:
        """The open image's photo could not be read (missing, damaged): answers that say what the
        photo shows are refused until it opens again; ungradable and the comment stay."""
        if self.image is not None and self.image.id == image_id:
            self.photo_problem = problem

    def _refuse_unseen(self) -> bool:
        """Whether the answer must be refused: a reader who could not see the photo cannot say it
        is normal or where a finding is (that would go into the consensus as a real reading)."""
        if self.photo_problem is None:
            return False
        self.refused.emit("This photo could not be shown, so it cannot be marked normal or labelled: "
                          "press U if it is ungradable, or Space to go on, and ask the admin to import it again.")
        return True

    def model_output_arrived(self, image_id: int) -> None:
        """The background pre-segmentation stored this image's results: if it is open, show its
        disc and fovea (unless the reader has their own) and its suggestion."""
        if self.image is None or self.image.id != image_id:
            return
        self._guard(lambda: self._take_model_landmarks(image_id))
        self.load_suggestion(image_id)

    def _take_model_landmarks(self, image_id: int) -> None:
        self._model_landmarks = self.session.model_landmarks(image_id)
        if self.state is not None and self.state.landmarks is None and self._model_landmarks is not None:
            self.shown_landmarks = self._model_landmarks
            self.landmarksShown.emit(self.shown_landmarks)

    def queue_from_here(self) -> list[int]:
        """The queue from the open image on, then the images before it: the order in which the
        reader will need them."""
        ids = self.queue_ids()
        start = ids.index(self.image.id) if self.image is not None and self.image.id in ids else 0
        return ids[start:] + ids[:start]

    def neighbour(self, step: int) -> int | None:
        ids = self.queue_ids()
        if self.image is None or self.image.id not in ids:
            return ids[0] if ids else None
        index = ids.index(self.image.id) + step
        return ids[index] if 0 <= index < len(ids) else None

    def go(self, step: int) -> None:
        if self._held_by_kept_clicks("moving on"):
            return
        target = self.neighbour(step)
        if target is not None:
            self.open_image(target)

    def next_unfinished(self) -> None:
        """Space/Enter: mark this image done when answered, then open the next unfinished."""
        if self.image is None or self._held_by_kept_clicks("moving on"):
            return
        self.leaving.emit()
        self._leave_current()
        try:
            target = self.session.next_unfinished(after_image_id=self.image.id)
        except OctantError as error:
            self.problem.emit(str(error))
            return
        if target is None:
            self.queueFinished.emit()
        elif target.id == self.image.id:
            self.hint.emit("This is your last unfinished image: answer it (a finding, N for "
                           "normal or U for ungradable), then press Space.")
        else:
            if target.id not in self.queue_ids() and not self.queue_pending:
                # Assigned while this window was open: the list and "n of N" learn of it first.
                self._guard(lambda: self.queueGrew.emit(self.queue_status()))
            self._guard(lambda: self._open(target.id))

    def finish(self) -> None:
        """Closing the window: the same rule as moving on (answered images are done)."""
        self.leaving.emit()
        self._leave_current()

    def upcoming(self) -> int | None:
        """The image Space would open next (for prefetch), without changing anything."""
        if self.image is None:
            return None
        after = self.image.id
        target = self.session.next_unfinished(after_image_id=after)
        if target is not None and target.id == after:
            return self.neighbour(1)
        return target.id if target is not None else self.neighbour(1)

    def _leave_current(self) -> None:
        """Moving on: an answered image becomes done; an emptied one returns to the queue."""
        state = self.state
        if self.image is None or state is None or state.done == state.answered:
            return
        if self._kept:   # the answer shown is not what the kept clicks will save: decided after them
            return
        self._write(f"{'Done' if state.answered else 'Reopened'}",
                    ReaderStep("mark_done", dict(done=state.answered)), undoable=False)
        self._emit_progress()

    # --- labelling ----------------------------------------------------------------------------
    def select_finding(self, code: str | None) -> None:
        if code is not None and code not in self.findings:
            self.problem.emit(f"This project has no finding {code!r}; pick one from the list.")
            return
        self.finding = code
        self.findingChanged.emit(code)

    def toggle_region(self, region: int) -> None:
        if self._refuse_unseen() or self._refuse_without_landmarks():
            return
        if self.finding is None:
            keys = ", ".join(f"{f.key.upper()} {f.name.lower()}"
                             for f in self.settings.findings[:4])
            self.hint.emit(f"Choose a finding first (e.g. {keys}), then the region.")
            return
        self._keep_shown_landmarks()
        finding = self.finding
        name = self.findings[finding].name
        self._write(f"{name}: region {region}",
                    ReaderStep("toggle_region", dict(finding_code=finding, region=region)))

    def mark_normal(self) -> bool:
        """Saved as normal (or kept to save); False where it was refused or failed."""
        if self._refuse_unseen():
            return False
        return self._write("Normal", ReaderStep("mark_normal"))

    def set_ungradable(self, ungradable: bool) -> None:
        if self.state is not None and self.state.ungradable != ungradable:
            self._write("Ungradable" if ungradable else "Gradable",
                        ReaderStep("set_ungradable", dict(ungradable=ungradable)))

    def set_diagnosis(self, diagnosis: str | None) -> None:
        if self.state is not None and self.state.diagnosis != diagnosis and not self._refuse_unseen():
            self._write(f"Diagnosis: {diagnosis or 'none'}",
                        ReaderStep("set_diagnosis", dict(diagnosis=diagnosis)))

    def set_comment(self, comment: str) -> None:
        if self.state is not None and self.state.comment != comment:
            self._write("Comment", ReaderStep("set_comment", dict(comment=comment)))

    def set_landmarks(self, disc: tuple[float, float], fovea: tuple[float, float],
                      source: str = "manual") -> None:
        if self._refuse_unseen():
            return
        self._write("Landmarks", ReaderStep("set_landmarks", dict(disc=disc, fovea=fovea, source=source)))

    def accept_suggestions(self) -> bool:
        """Shift+A: every region the model suggests becomes the reader's (one undoable action)."""
        if self._refuse_unseen():
            return False
        if self.image is not None and self.suggestion is None:
            self.load_suggestion(self.image.id)
        if self.state is None or self.suggestion is None or not self.suggestion.finding_regions:
            self.hint.emit("The model suggests no regions for this image.")
            return False
        if self._refuse_without_landmarks():
            return False
        self._keep_shown_landmarks()
        target, shown = accepted(self.state, self.suggestion, set(self.findings)), self.state
        return self._write("Model's regions accepted", ReaderStep("restore", dict(target=target, expected=shown)))

    def _refuse_without_landmarks(self) -> bool:
        """Whether a region must be refused: regions are defined by the disc and fovea, and one saved
        before both exist has no geometry (the export could only count it as undrawn). Normal and
        ungradable need no regions and stay possible."""
        if self.image is None or self.shown_landmarks is not None or any(
                click.image_id == self.image.id and click.step.method == "set_landmarks"
                for click in self.saves.kept()):   # placed, and kept for a busy database: regions follow them
            return False
        self.refused.emit(REGIONS_NEED_LANDMARKS)
        return True

    def _keep_shown_landmarks(self) -> None:
        """Regions chosen on a model's landmarks keep those landmarks as the reader's own."""
        shown = self.shown_landmarks
        if self.state is not None and self.state.landmarks is None and shown is not None:
            self.set_landmarks(shown.disc, shown.fovea, source=shown.source)

    # --- undo ---------------------------------------------------------------------------------
    def history(self) -> ImageUndoStack:
        return self._history.setdefault(self.image.id if self.image else -1, ImageUndoStack())

    def undo(self) -> None:
        if self._held_by_kept_clicks("undoing"):
            return
        stack = self.history()
        if self.image is None or not stack.can_undo():
            self.saved.emit("Nothing to undo on this image")
            return
        entry = stack.take_undo()
        # Compare-and-set: only if what is stored is still what this workstation saved.
        if not self._write(f"Undone: {entry.label}", ReaderStep("restore", dict(target=entry.before, expected=entry.after)),
                           undoable=False):
            stack.position += 1  # not undone: the entry stays where it was

    def redo(self) -> None:
        if self._held_by_kept_clicks("redoing"):
            return
        stack = self.history()
        if self.image is None or not stack.can_redo():
            self.saved.emit("Nothing to redo on this image")
            return
        entry = stack.take_redo()
        if not self._write(f"Redone: {entry.label}", ReaderStep("restore", dict(target=entry.after, expected=entry.before)),
                           undoable=False):
            stack.position -= 1

    # --- internals ----------------------------------------------------------------------------
    def _write(self, label: str, step: ReaderStep, undoable: bool = True) -> bool:
        if self.image is None or self.state is None:
            return False
        before, image_id = self.state, self.image.id
        if self._kept:   # after the clicks kept before it, in order
            self._keep(KeptClick(label, image_id, step, undoable))
            return True
        try:
            after = step.apply(self.session, image_id)
        except (DatabaseLockedError, DatabaseUnreachableError) as error:
            # Another program holds the database, or its server stopped or the network dropped:
            # kept, saved when it is free or back.
            self._kept_because = OUT_OF_REACH if isinstance(error, DatabaseUnreachableError) else BUSY_ELSEWHERE
            self._keep(KeptClick(label, image_id, step, undoable))
            return True
        except StaleAnswerError as error:  # expected in a shared clinic: the status bar, no box
            self.stale.emit(str(error))
            self._guard(lambda: self._refresh(image_id))
            return False
        except OctantError as error:
            self.problem.emit(str(error))
            self._guard(lambda: self._refresh(image_id))
            return False
        self.state = after
        self.shown_landmarks = after.landmarks or self._model_landmarks
        if undoable and after != before:
            self.history().push(UndoEntry(label, before, after))
        self.stateChanged.emit(after)
        self.saved.emit(f"Saved ✓ {datetime.now():%H:%M:%S} · {label}")
        return True

    # --- clicks kept while the database is busy (ui/save_queue.py) -------------------------------
    def kept_clicks(self) -> int:
        """Clicks given but not saved yet (another program holds the database)."""
        return self._kept

    def _keep(self, click: KeptClick) -> None:
        self._kept += 1
        self.saves.keep(click)
        self._say_saving()

    def _say_saving(self) -> None:
        clicks = f"{self._kept} click{'s' if self._kept > 1 else ''}"
        self.saved.emit(f"Saving… {clicks} kept: {self._kept_because}")

    def _held_by_kept_clicks(self, doing: str) -> bool:
        """Moving on or undoing waits for the kept clicks: what they save decides it (an answered
        image is marked done as the reader leaves it; an undo restores what was saved)."""
        if not self._kept:
            return False
        self.hint.emit(f"{KEPT_CLICKS_HINT}; {doing} waits until the status bar says Saved ✓.")
        return True

    def _on_kept_click(self, saved: SavedClick) -> None:
        """A kept click was saved (or refused for a reason of its own): shown as any save is."""
        self._kept = max(0, self._kept - 1)
        click, open_here = saved.click, self.image is not None and self.image.id == saved.click.image_id
        if saved.after is None:
            if isinstance(saved.problem, StaleAnswerError):
                self.stale.emit(str(saved.problem))
            else:
                self.problem.emit(f"{click.label} was not saved: {saved.problem}")
            if open_here:
                self._guard(lambda: self._refresh(click.image_id))
        else:
            if click.undoable and saved.before is not None and saved.after != saved.before:
                self._history.setdefault(click.image_id, ImageUndoStack()).push(
                    UndoEntry(click.label, saved.before, saved.after))
            if open_here:
                self.state = saved.after
                self.shown_landmarks = saved.after.landmarks or self._model_landmarks
                self.stateChanged.emit(saved.after)
            self.readSaved.emit(click.image_id, saved.after)
        if self._kept:
            self._say_saving()
        else:
            if saved.after is not None:
                self.saved.emit(f"Saved ✓ {datetime.now():%H:%M:%S} · {click.label}")
            self._emit_progress()

    def _refresh(self, image_id: int) -> None:
        self.state = self.session.read(image_id)
        self.stateChanged.emit(self.state)

    def _emit_progress(self) -> None:
        try:
            progress = self.session.progress()
        except OctantError as error:
            self.problem.emit(str(error))
            return
        self.progressChanged.emit(progress.done, progress.total)

    def _guard(self, call: Callable[[], None]) -> None:
        try:
            call()
        except OctantError as error:
            self.problem.emit(str(error))
