"""Batch pre-segmentation: thousands of photos overnight, in bounded memory, resumable.

Photos are decoded (JPEGs at 1/2 or 1/4 size inside the decoder when that still leaves the
lesion network its working resolution) on worker threads (where ``models.engine.device.thread_plan``
spares cores for them; on 2 cores in turn) while the previous batch runs through
``run_pipeline_batch`` (``batch_size`` photos per network call: 8 on a GPU, 1 on a CPU), and
written out on worker threads while the next batch runs. At most two batches are in memory,
whatever the number of photos. ``result.json`` is written last, atomically: a folder with it is
complete, and a rerun skips it (``redo`` recomputes). A bad file is reported in one line and
skipped; the rest of its batch goes on.

Under ``torchrun --nproc_per_node=N`` each process takes its ``shard`` of the photos
(``models.engine.device.DistributedWorld``: photo i of the stable order goes to rank i % N) and writes
only those photos' folders and predictions; a rerun with any N skips what is done. Rank 0 shows its
progress and the summary of all processes.

Into a project, processes that do not know each other (two workstations pre-segmenting ahead, a
workstation and ``presegment``) share the work through claims in the project database
(``storage.work_claims``): each image is claimed as the pipeline takes it, one batch ahead, and its
prediction stored with the claim settled in one transaction; images another process holds are
looked at again once this process's own are done, until their results are stored (reported done)
or their claims expire (taken over). The torchrun shard is the static split within one launch
and works for folders too; claims cover everything else.
"""
from __future__ import annotations

import json
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Generator, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from itertools import islice
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np
import torch

from annotate.services.image_files import find_image_files
from annotate.services.photos import checked_photo_size, read_photograph
from models.engine.cancel import check_cancelled
from models.engine.device import current_thread_plan
from models.segmentation.lesions import LesionNetConfig
from models.segmentation.pipeline import (
    MASK_NAMES,
    PipelineModels,
    PipelineOptions,
    PipelineResult,
    load_pipeline_models,
    run_pipeline,
    run_pipeline_batch,
)
from models.segmentation.stored_names import PREDICTION_KIND
from storage.command_progress import CommandProgress
from storage.errors import CancelledError, OctantError, about_file

if TYPE_CHECKING:
    from storage.project import ProjectHandle

RESULT_FILE = "result.json"
DONE_ELSEWHERE = "pre-segmented by another workstation or process"
HELD_POLL_S = 2.0   # how often images another process holds are looked at again


@dataclass
class PresegmentProgress:
    done: int
    total: int
    path: Path
    status: str            # "done" | "skipped" | "failed"
    message: str = ""
    image_id: int | None = None   # the project's image (with a project)


@dataclass
class PresegmentSummary:
    done: int = 0
    skipped: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)
    seconds: float = 0.0
    messages: list[str] = field(default_factory=list)
    red_free: int = 0      # photos done that were red-free (grey or green): no lesion regions suggested (RED_FREE_NOTE)
    no_fundus: int = 0     # pictures done that held no retina: nothing suggested ("No fundus found")
    elsewhere: int = 0     # a project's images another process pre-segmented during this pass


def decode_reduction(path: Path, lesion_fov_px: int = LesionNetConfig().fov_diameter_px) -> tuple[int, int, int]:
    """(reduce, width, height): the largest JPEG decoder reduction (1, 2, 4) that keeps the
    photo's shorter side (≈ its FOV diameter) at least the lesion network's working FOV. A photo
    import would refuse for its size (a thumbnail, a bomb) is refused here too, from its header."""
    width, height = checked_photo_size(path)
    reduce = 1
    for candidate in (2, 4):
        if min(width, height) / candidate >= lesion_fov_px:
            reduce = candidate
    return reduce, width, height


def default_batch_size(device: torch.device) -> int:
    """Photos per network call: a GPU gains from batches; a CPU does not, and would hold more photos."""
    return 8 if device.type == "cuda" else 1


def decode_photo(path: Path, sha256: str | None = None) -> tuple[np.ndarray, PipelineOptions]:
    """The photo as the pipeline reads it, with where its pixels sit in the original; refused as
    import refuses it (a JPEG damaged in mid-stream too: it would get grey-smeared suggestions),
    and, given the ``sha256`` stored at import, refused when the file holds another photograph now
    (checked after decoding, so that damage keeps its own sentence)."""
    reduce, width, height = decode_reduction(path)
    image = read_photograph(path, reduce, sha256)   # the bytes decoded are the bytes hashed: one read
    return image, PipelineOptions(input_scale=image.shape[1] / width, original_shape=(height, width))


def process_photo(path: Path, models: PipelineModels) -> PipelineResult:
    image, options = decode_photo(path)
    started = time.perf_counter()
    result = run_pipeline(image, models, options)
    result.timings["total"] = time.perf_counter() - started
    return result


class _InTurn:
    """An executor that runs each job at once on the calling thread (no cores to spare beside the networks)."""

    def submit(self, function, *args) -> Future:
        future: Future = Future()
        try:
            future.set_result(function(*args))
        except Exception as error:
            future.set_exception(error)
        return future

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        return None


def helper_pool(workers: int):
    """Threads beside the networks as ``models.engine.device.thread_plan`` allows; none: jobs run in turn."""
    return ThreadPoolExecutor(max_workers=workers) if workers > 0 else _InTurn()


def _outcome(future: Future):
    """A finished future's result, or the exception it raised."""
    error = future.exception()
    return error if error is not None else future.result()


def pipeline_results(paths: Iterable[Path], models: PipelineModels, batch_size: int = 1,
                     sha256s: Iterable[str | None] | None = None
                     ) -> Generator[tuple[Path, PipelineResult | Exception], None, None]:
    """(path, result or the reason it failed) in the order of ``paths``, which are taken one batch
    ahead (a project's photos are claimed as they are taken). The next batch is decoded on threads
    while this one runs; a photo that breaks its batch is retried alone, so only it fails.
    ``sha256s``: each project photo's SHA-256 from import (``decode_photo``), None for a plain file."""
    return _results_of(zip(paths, sha256s) if sha256s is not None else ((path, None) for path in paths),
                       models, batch_size)


def _results_of(photos: Iterable[tuple[Path, str | None]], models: PipelineModels, batch_size: int
                ) -> Generator[tuple[Path, PipelineResult | Exception], None, None]:
    remaining = iter(photos)

    def next_chunk() -> list[tuple[Path, str | None]]:
        return list(islice(remaining, max(1, batch_size)))
    with helper_pool(min(batch_size, current_thread_plan().decode)) as decoders:
        chunk = next_chunk()
        upcoming = [decoders.submit(decode_photo, *photo) for photo in chunk]
        while chunk:
            decoded = [_outcome(future) for future in upcoming]
            following = next_chunk()
            upcoming = [decoders.submit(decode_photo, *photo) for photo in following]
            yield from zip([path for path, _ in chunk], _run_batch(decoded, models))
            chunk = following


def _run_batch(decoded: list, models: PipelineModels) -> list[PipelineResult | Exception]:
    outcomes = list(decoded)
    ready = [i for i, item in enumerate(decoded) if not isinstance(item, Exception)]
    started = time.perf_counter()
    results: list[PipelineResult | Exception]
    try:
        results = list(run_pipeline_batch([decoded[i][0] for i in ready], models, [decoded[i][1] for i in ready]))
    except CancelledError:
        raise
    except Exception as error:
        if len(ready) == 1:
            results = [error]
        else:   # find the photo that broke the batch: the others still get their results
            results = []
            for i in ready:
                try:
                    image, options = decoded[i]
                    results.append(run_pipeline(image, models, options))
                except CancelledError:
                    raise
                except Exception as single_error:
                    results.append(single_error)
    seconds = (time.perf_counter() - started) / max(1, len(ready))
    for i, result in zip(ready, results):
        if isinstance(result, PipelineResult):
            result.timings["total"] = seconds
        outcomes[i] = result
    return outcomes


@dataclass
class _Job:
    path: Path
    write: Callable[[PipelineResult], object]               # files, on a writer thread
    record: Callable[[PipelineResult], None] | None = None   # then the database, on the calling thread
    image_id: int | None = None
    sha256: str | None = None   # a project photo's, from import: a file that changed since is skipped


def _run_jobs(jobs: Iterable[_Job], models: PipelineModels, summary: PresegmentSummary, report: Callable,
              batch_size: int, cancel: threading.Event | None) -> None:
    """Each job's photo through the pipeline, its outputs written on threads (one photo's PNGs
    take longer than its networks on a GPU), finished in order; ``jobs`` are taken one batch ahead.
    A cancel is seen between photos and, through ``models.engine.cancel``, inside a photo; the
    photos finished before it are stored."""
    pending: deque[tuple[_Job, Future, PipelineResult]] = deque()
    taken: deque[_Job] = deque()

    def photos() -> Iterator[tuple[Path, str | None]]:
        for job in jobs:
            taken.append(job)
            yield job.path, job.sha256
    stopped = False

    def finish_oldest() -> None:
        job, writing, result = pending.popleft()
        try:
            writing.result()
            if job.record is not None:
                job.record(result)
            summary.done += 1
            summary.red_free += result.red_free
            summary.no_fundus += result.no_fundus
            report(job.path, "done", "", job.image_id)
        except Exception as error:
            message = describe_failure(error)
            summary.failed.append((str(job.path), message))
            report(job.path, "failed", message, job.image_id)

    results = _results_of(photos(), models, batch_size)
    with helper_pool(current_thread_plan().write) as writers:
        try:
            for _, outcome in results:
                job = taken.popleft()
                if isinstance(outcome, Exception):
                    message = describe_failure(outcome)
                    summary.failed.append((str(job.path), message))
                    report(job.path, "failed", message, job.image_id)
                else:
                    pending.append((job, writers.submit(job.write, outcome), outcome))
                while len(pending) > batch_size:   # one batch written while the next runs
                    finish_oldest()
                check_cancelled(cancel)
        except CancelledError:
            stopped = True
        finally:
            results.close()   # its decoding threads end with it
            while pending:
                finish_oldest()
    if stopped:
        raise CancelledError(_stopped_after(summary))


def _stopped_after(summary: PresegmentSummary) -> str:
    return f"Pre-segmentation stopped after {summary.done} photos; run it again to continue."


def _wait_unless_cancelled(seconds: float, cancel: threading.Event | None, summary: PresegmentSummary) -> None:
    if cancel is None:
        time.sleep(seconds)
    elif cancel.wait(seconds):
        raise CancelledError(_stopped_after(summary))


def _courtesy(release: Callable[[], None]) -> None:
    """Letting claims go early is a courtesy (they expire ``CLAIM_SECONDS`` after this process's last
    stored image): a busy or unreachable database then neither fails the pass nor hides its stop."""
    try:
        release()
    except OctantError:
        pass


def _write_png(path: Path, image: np.ndarray) -> None:
    """One mask, whole or not at all: written beside its name, then renamed over it (a redo or a
    process that took an expired claim over never leaves a torn mask under the name the workstation
    opens), and a failed write raises (cv2.imwrite says it only by returning False)."""
    ok, encoded = cv2.imencode(".png", image, [cv2.IMWRITE_PNG_COMPRESSION, 1])   # fast: masks compress well
    if not ok:
        raise OSError(f"{path.name} could not be encoded as PNG")
    temporary = path.with_name(path.name + ".partial")
    try:
        temporary.write_bytes(encoded.tobytes())
        os.replace(temporary, path)
    except OSError as error:
        temporary.unlink(missing_ok=True)
        raise OSError(f"{path} could not be written ({error.strerror or error})") from error


def write_outputs(result: PipelineResult, folder: Path, probabilities: bool, source: Path) -> None:
    """PNG masks at the original size (0/255), ``regions.png`` (codes 0–8), optional 8-bit
    probability maps, and ``result.json`` last."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in MASK_NAMES:
        prob = result.probability(name)
        if prob is None:
            continue
        threshold = result.thresholds.get(name, 0.5)
        _write_png(folder / f"{name}.png", ((prob >= threshold) * 255).astype(np.uint8))
        if probabilities:
            _write_png(folder / f"{name}_probability.png", np.clip(prob * 255 + 0.5, 0, 255).astype(np.uint8))
    regions = result.region_map()
    if regions is not None:
        _write_png(folder / "regions.png", regions)
    payload = {"image": str(source), **result.to_json()}
    temporary = folder / (RESULT_FILE + ".partial")
    temporary.write_text(json.dumps(payload, indent=1))
    os.replace(temporary, folder / RESULT_FILE)


def presegment_to_folder(paths: list[Path], out: Path, models: PipelineModels, probabilities: bool = False,
                         redo: bool = False, progress: Callable[[PresegmentProgress], None] | None = None,
                         cancel: threading.Event | None = None, batch_size: int | None = None,
                         shard: Callable[[int], bool] | None = None) -> PresegmentSummary:
    """``shard(i)``: whether the photo at position i of ``paths`` is this process's (default: all)."""
    summary, started, used = PresegmentSummary(), time.perf_counter(), set()
    folders = []
    for index, path in enumerate(paths, 1):   # named over all paths: every process names a photo alike
        stem = path.stem if path.stem not in used else f"{path.stem}_{index}"
        used.add(stem)
        folders.append((path, out / stem))
    folders = [item for i, item in enumerate(folders) if shard is None or shard(i)]
    report = _reporter(len(folders), progress)
    jobs = []
    for path, folder in folders:
        if (folder / RESULT_FILE).is_file() and not redo:
            summary.skipped += 1
            report(path, "skipped", "")
        else:
            jobs.append(_Job(path, partial(write_outputs, folder=folder, probabilities=probabilities, source=path)))
    _run_jobs(jobs, models, summary, report, batch_size or default_batch_size(models.device), cancel)
    summary.seconds = time.perf_counter() - started
    return summary


def _reporter(total: int, progress: Callable[[PresegmentProgress], None] | None) -> Callable:
    count = 0

    def report(path: Path, status: str, message: str, image_id: int | None = None) -> None:
        nonlocal count
        count += 1
        if progress is not None:
            progress(PresegmentProgress(count, total, path, status, message, image_id))
    return report


def presegment_project(project: ProjectHandle, paths: list[Path] | None, models: PipelineModels, redo: bool = False,
                       progress: Callable[[PresegmentProgress], None] | None = None,
                       cancel: threading.Event | None = None, batch_size: int | None = None,
                       image_ids: list[int] | None = None,
                       shard: Callable[[int], bool] | None = None) -> PresegmentSummary:
    """Store results as predictions of ``project``: kind "presegmentation" (the result JSON plus
    suggested regions per finding code), the model's landmarks, and PNG masks under
    ``<project>/predictions/<image id>/``. The images are ``image_ids`` in that order (e.g. a
    reader's queue), else those at ``paths``, else every image of the project (by number);
    ``shard(i)`` keeps those at the positions i this process takes (default: all). Each image is
    claimed before its photo is decoded (module docstring): one another process holds is waited
    for, and counted in ``summary.elsewhere`` once that process has stored it."""
    from annotate.services.photos import sha256_of_file
    from storage.images import find_image_by_sha256, get_image, list_images
    from storage.predictions import latest_prediction, save_claimed_prediction
    from storage.schema import utc_now
    from storage.work_claims import CLAIMED, DONE, claim_image, new_holder, release_claim, release_claims

    db = project.database
    if image_ids is not None:
        records = [get_image(db, image_id) for image_id in image_ids]
    elif paths is None:
        records = list_images(db)
    else:
        records = []
        for path in paths:
            record = find_image_by_sha256(db, sha256_of_file(path))
            if record is None:
                raise OctantError(f"{path} is not in the project; import it first with `python main.py import`.")
            records.append(record)
    records = [record for i, record in enumerate(records) if shard is None or shard(i)]
    channel_to_findings: dict[str, list[str]] = {}
    for finding in project.settings().findings:
        if finding.lesion_channel:
            channel_to_findings.setdefault(finding.lesion_channel, []).append(finding.code)
    summary, started = PresegmentSummary(), time.perf_counter()
    report = _reporter(len(records), progress)
    holder, pass_started = new_holder(), utc_now()
    to_do = []
    for record in records:
        if not redo and latest_prediction(db, record.id, PREDICTION_KIND) is not None:
            summary.skipped += 1
            report(record.path, "skipped", "", record.id)
        else:
            to_do.append(record)

    def job(record) -> _Job:
        def store(result: PipelineResult) -> None:
            payload = {**result.to_json(), "mask_folder": f"predictions/{record.id}",
                       "finding_regions": finding_regions(result, channel_to_findings)}
            version = ";".join(f"{k}={v}" for k, v in sorted(result.model_versions.items()))
            landmarks = ((result.disc, result.fovea, result.model_versions["landmarks"])
                         if result.disc is not None and result.fovea is not None else None)
            save_claimed_prediction(db, record.id, PREDICTION_KIND, payload, version, holder, landmarks)

        folder = project.root / "predictions" / str(record.id)
        return _Job(record.path, partial(write_outputs, folder=folder, probabilities=False, source=record.path),
                    store, record.id, record.sha256)

    def claimed(candidates: list, held: list) -> Iterator[_Job]:
        """The candidates this process claims, as the pipeline takes them; those another process
        finished are reported done, those it holds go to ``held``."""
        for record in candidates:
            outcome = claim_image(db, record.id, PREDICTION_KIND, holder, stored_since=pass_started if redo else None)
            if outcome == CLAIMED:
                yield job(record)
            elif outcome == DONE:
                summary.elsewhere += 1
                report(record.path, "done", DONE_ELSEWHERE, record.id)
            else:
                held.append(record)

    def reported(path: Path, status: str, message: str, image_id: int | None) -> None:
        """A claimed image this process could not do is let go at once (each stored image renews the
        holder's claims: kept, it would wait for this whole pass)."""
        if status == "failed" and image_id is not None:
            _courtesy(lambda: release_claim(db, image_id, PREDICTION_KIND, holder))
        report(path, status, message, image_id)

    batch = batch_size or default_batch_size(models.device)
    try:
        held: list = []
        _run_jobs(claimed(to_do, held), models, summary, reported, batch, cancel)
        while held:   # another process's images: their results, or their claims once expired
            _wait_unless_cancelled(HELD_POLL_S, cancel, summary)
            waiting, held = held, []
            _run_jobs(claimed(waiting, held), models, summary, reported, batch, cancel)
    finally:
        _courtesy(lambda: release_claims(db, PREDICTION_KIND, holder))
    summary.seconds = time.perf_counter() - started
    return summary


def describe_failure(error: Exception) -> str:
    if isinstance(error, CancelledError):
        raise error
    if isinstance(error, (OctantError, OSError)):
        return str(error)
    return f"could not be pre-segmented ({type(error).__name__}: {error}); check that it is a fundus photograph"


def finding_regions(result: PipelineResult, channel_to_findings: dict[str, list[str]]) -> dict[str, list[int]]:
    """Suggested regions per finding code, through each finding's lesion channel (e.g. cotton
    wool patch ↔ SE)."""
    from models.segmentation.lesions import LESION_NAMES

    out: dict[str, list[int]] = {}
    for channel, codes in channel_to_findings.items():
        regions = result.lesion_regions.get(LESION_NAMES.get(channel, ""), None)
        if regions is not None:
            for code in codes:
                out[code] = regions
    return out


def presegment_command(args) -> int:
    import sys

    from models.engine.device import DistributedWorld

    if not args.project and not args.out:   # like every other command: $OCTANT_PROJECT, else this folder
        from storage.commands import default_project_folder, implied_project_folder

        folder = implied_project_folder()
        if folder is None and not args.database_url:
            raise OctantError("Say where the results go: --out DIR (files) or --project DIR (predictions).")
        args.project = str(folder or default_project_folder())
    if args.out and not args.project:   # before the networks load, not once per photo as "unreadable"
        out = Path(args.out)
        if out.exists() and not out.is_dir():
            raise OctantError(f"{out} is a file, not a folder; give --out a folder for the results.")
    from models.engine.precision import apply_precision_argument

    world = DistributedWorld(args.device)   # under torchrun: this process's rank and device
    device = world.device if world.active else args.device
    apply_precision_argument(args, device=str(world.device) if world.active else args.device,
                             warn=None if world.rank == 0 else (lambda text: None))
    if args.out and not args.project:   # after the options are checked (a bad one makes no folder)
        try:   # read-only, no rights, a file on the way: each photo was "skipped" with an [Errno 30]
            Path(args.out).mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise OctantError(f"Cannot create {args.out} ({error.strerror}); choose a folder you can "
                              "write to.") from None
    models, messages = load_pipeline_models(args.weights_dir, device)
    if world.rank == 0:   # every process loads the same weights: their notes once
        print(f"octant: {models.backend_line()}", file=sys.stderr)
        for line in messages:
            print(f"octant: {line}", file=sys.stderr)
    # One bar, rank 0's (its share of the photos) unless --quiet; the other processes only name the
    # photos they skip, and so does rank 0 when quiet: a skipped photo is always said.
    share = f"process 1 of {world.size}" if world.active else ""
    bar = CommandProgress(unit="photo", line_every=0.0, quiet=world.rank > 0 or args.quiet, description=share)

    def show(event: PresegmentProgress) -> None:
        if event.status == "failed":
            line = f"skipped {about_file(event.path, event.message)}"
            if not bar.quiet:
                bar.message(line)
            elif world.active:
                print(f"octant: process {world.rank + 1} of {world.size} {line}", file=sys.stderr, flush=True)
            else:
                print(f"octant: {line}", file=sys.stderr, flush=True)
        bar.update(event.done, event.path.name, total=event.total)
    paths = find_image_files(args.inputs, resolve=False) if args.inputs else None
    if not args.project and not paths:
        raise OctantError("No images found; name image files or folders that hold them.")
    started = time.perf_counter()
    with bar:
        if args.project:
            from storage.project import open_project

            project = open_project(args.project, args.database_url)
            try:
                summary = presegment_project(project, paths, models, args.redo, show, batch_size=args.batch_size,
                                             shard=world.shard)
            finally:
                project.close()
        else:
            summary = presegment_to_folder(paths or [], Path(args.out), models, args.probabilities, args.redo, show,
                                           batch_size=args.batch_size, shard=world.shard)
    done, skipped, failed, red_free, no_fundus, elsewhere = world.total([   # waits for all
        summary.done, summary.skipped, len(summary.failed), summary.red_free, summary.no_fundus, summary.elsewhere])
    minutes = (time.perf_counter() - started) / 60
    world.teardown()
    if world.rank == 0:
        processes = f" by {world.size} processes" if world.active else ""
        shared = f", {elsewhere} by another workstation or process meanwhile" if elsewhere else ""
        print(f"{done} photos pre-segmented, {skipped} already done{shared}, {failed} skipped (unreadable, "
              f"or changed since import){processes}, in {minutes:.1f} min.", file=sys.stderr)
        if red_free:
            photos = "was a red-free photo" if red_free == 1 else "were red-free photos"
            print(f"{red_free} of them {photos}: no lesion regions are suggested on those, as the lesion networks "
                  "learnt on colour photos and tell haemorrhages and exudates apart by their colour.", file=sys.stderr)
        if no_fundus:   # only result.json said so: "2 photos pre-segmented" hid a blank page among them
            one = no_fundus == 1
            print(f"{no_fundus} of them held no retina (\"No fundus found\"): nothing is suggested for "
                  f"{'it; check that it is a fundus photograph' if one else 'them; check that they are fundus photographs'}.",
                  file=sys.stderr)
    return 0 if not failed else 2
