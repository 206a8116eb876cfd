"""The report on disk: PNG and PDF figures, CSV tables and one HTML summary.

Figures are drawn with matplotlib's object API on its Agg canvas (no pyplot, no global backend),
so writing a report never touches the GUI's Qt. Every file is written beside its final name and
renamed, so a failure leaves no half-written file; an unwritable folder is one sentence.
"""
from __future__ import annotations

import csv
import html
import io
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from annotate.geometry import REGION_NAMES
from models.report.numbers import ALL, ReportNumbers
from storage.errors import OctantError

FIGURES = ("prevalence", "kappa", "regional_kappa", "readers", "roc", "pr", "diagnoses", "regional_confusion",
           "readers_over_time")
TABLES = ("findings", "regions", "readers", "curves", "diagnoses", "regional_confusion", "reading_times",
          "reading_actions", "reader_periods", "gold_scores", "repeat_scores")
SUMMARY = "summary.html"


@dataclass(frozen=True)
class WrittenReport:
    folder: Path
    files: list[Path]


def _number(value: float, digits: int = 3) -> str:
    return "" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"


def _replace(path: Path, data: bytes) -> None:
    partial = path.with_name(path.name + ".part")
    try:
        partial.write_bytes(data)
        os.replace(partial, path)
    except OSError as error:
        partial.unlink(missing_ok=True)
        raise OctantError(f"Cannot write {path} ({error.strerror}); choose a folder you can write to.") from None


def _save_figure(figure: Figure, folder: Path, name: str) -> list[Path]:
    FigureCanvasAgg(figure)
    written = []
    for suffix in ("png", "pdf"):
        buffer = io.BytesIO()
        figure.savefig(buffer, format=suffix, dpi=120, bbox_inches="tight")
        _replace(folder / f"{name}.{suffix}", buffer.getvalue())
        written.append(folder / f"{name}.{suffix}")
    return written


def _save_table(folder: Path, name: str, header: list[str], rows) -> Path:
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer)
    writer.writerow(header)
    writer.writerows(rows)
    path = folder / f"{name}.csv"
    _replace(path, buffer.getvalue().encode("utf-8"))
    return path


def _note_if_empty(axes, empty: bool, text: str) -> None:
    if empty:
        axes.text(0.5, 0.5, text, ha="center", va="center", transform=axes.transAxes, color="0.4")


# ----------------------------------------------------------------------------------------- figures

def prevalence_figure(numbers: ReportNumbers) -> Figure:
    figure = Figure(figsize=(7, 3.5))
    axes = figure.add_subplot()
    names = [f.name for f in numbers.findings]
    values = [0 if math.isnan(f.prevalence) else f.prevalence for f in numbers.findings]
    axes.bar(names, values, color="#4477aa")
    axes.set_ylabel("prevalence (present / decided)")
    axes.set_ylim(0, 1)
    axes.set_title("Prevalence per finding (final labels)")
    axes.tick_params(axis="x", rotation=30)
    return figure


def kappa_figure(numbers: ReportNumbers) -> Figure:
    figure = Figure(figsize=(7, 3.5))
    axes = figure.add_subplot()
    x = np.arange(len(numbers.findings))
    finding = [f.kappa for f in numbers.findings]
    regional = [f.regional_kappa for f in numbers.findings]
    axes.bar(x - 0.2, np.nan_to_num(finding), 0.4, label="finding level", color="#4477aa")
    axes.bar(x + 0.2, np.nan_to_num(regional), 0.4, label="region level", color="#ee6677")
    axes.set_xticks(x, [f.name for f in numbers.findings], rotation=30)
    axes.set_ylim(min(0.0, *np.nan_to_num(finding + regional)) if numbers.findings else 0, 1)
    axes.axhline(0, color="0.3", linewidth=0.8)
    axes.set_ylabel("Fleiss' κ")
    axes.set_title("Agreement of the readers")
    axes.legend()
    return figure


def regional_kappa_figure(numbers: ReportNumbers) -> Figure:
    figure = Figure(figsize=(7, 0.6 + 0.45 * max(1, len(numbers.findings))))
    axes = figure.add_subplot()
    values = np.array([f.regional_kappa_by_region for f in numbers.findings]).reshape(-1, 8)
    image = axes.imshow(np.ma.masked_invalid(values), vmin=-1, vmax=1, cmap="RdBu", aspect="auto")
    axes.set_xticks(range(8), [f"{code} {REGION_NAMES[code]}" for code in range(1, 9)], rotation=40, ha="right")
    axes.set_yticks(range(len(numbers.findings)), [f.name for f in numbers.findings])
    for (row, column), value in np.ndenumerate(values):
        if not math.isnan(value):
            axes.text(column, row, f"{value:.2f}", ha="center", va="center", fontsize=7)
    figure.colorbar(image, ax=axes, label="Fleiss' κ (blank: undefined)")
    axes.set_title("Region-level agreement per finding and region")
    return figure


def readers_figure(numbers: ReportNumbers) -> Figure:
    figure = Figure(figsize=(9, 4), layout="constrained")
    pooled = [r for r in numbers.readers if r.finding == ALL]
    for index, (title, sensitivity, specificity) in enumerate((
            ("finding level", "sensitivity", "specificity"),
            ("region level", "regional_sensitivity", "regional_specificity"))):
        axes = figure.add_subplot(1, 2, index + 1)
        for reader in pooled:
            x, y = 1 - getattr(reader, specificity), getattr(reader, sensitivity)
            axes.scatter([x], [y], color="#4477aa")
            axes.annotate(reader.name, (x, y), textcoords="offset points", xytext=(4, 4), fontsize=8)
        axes.set_xlim(0, 1)
        axes.set_ylim(0, 1.05)
        axes.set_xlabel("1 − specificity")
        axes.set_ylabel("sensitivity")
        axes.set_title(f"Readers against consensus, {title}")
        _note_if_empty(axes, not pooled, "no reads with a consensus yet")
    return figure


def roc_figure(numbers: ReportNumbers) -> Figure:
    figure = Figure(figsize=(6, 5.5))
    axes = figure.add_subplot()
    axes.plot([0, 1], [0, 1], color="0.7", linestyle="--", linewidth=0.8)
    measured = [(f, f.model) for f in numbers.findings if f.model is not None and not math.isnan(f.model.auroc)]
    for f, m in measured:
        line, = axes.plot(m.roc.false_positive_rate, m.roc.true_positive_rate,
                          label=f"{f.name} (AUROC {m.auroc:.3f}, n={m.images})")
        point = m.operating_point
        axes.scatter([1 - point.specificity], [point.sensitivity], color=line.get_color(), zorder=3)
    axes.set_xlabel("1 − specificity")
    axes.set_ylabel("sensitivity")
    axes.set_title("Model ROC on images with a final label (dots: operating points)")
    if measured:
        axes.legend(fontsize=8, loc="lower right")
    _note_if_empty(axes, not measured, "no stored model predictions with both classes")
    return figure


def pr_figure(numbers: ReportNumbers) -> Figure:
    figure = Figure(figsize=(6, 5.5))
    axes = figure.add_subplot()
    positives = [(f, f.model) for f in numbers.findings if f.model is not None and f.model.positives]
    for f, m in positives:
        axes.plot(m.pr.recall, m.pr.precision, drawstyle="steps-post",
                  label=f"{f.name} (AP {m.average_precision:.3f}, prevalence {m.positives / m.images:.2f})")
    axes.set_xlim(0, 1)
    axes.set_ylim(0, 1.05)
    axes.set_xlabel("recall (sensitivity)")
    axes.set_ylabel("precision")
    axes.set_title("Model precision–recall on images with a final label")
    if positives:
        axes.legend(fontsize=8, loc="lower left")
    _note_if_empty(axes, not positives, "no stored model predictions with positives")
    return figure


def _matrix(axes, matrix: np.ndarray, labels: list[str], title: str, rows: str, columns: str) -> None:
    axes.imshow(matrix, cmap="Blues")
    axes.set_xticks(range(len(labels)), labels, rotation=40, ha="right")
    axes.set_yticks(range(len(labels)), labels)
    high = matrix.max() if matrix.size else 0
    for (row, column), value in np.ndenumerate(matrix):
        axes.text(column, row, str(int(value)), ha="center", va="center", fontsize=8,
                  color="white" if high and value > high / 2 else "black")
    axes.set_xlabel(columns)
    axes.set_ylabel(rows)
    axes.set_title(title)


def diagnoses_figure(numbers: ReportNumbers) -> Figure:
    figure = Figure(figsize=(12, 5.5), layout="constrained")
    classes = numbers.diagnosis_classes
    _matrix(figure.add_subplot(1, 2, 1), numbers.readers_diagnosis_confusion, classes,
            "Readers against the consensus diagnosis", "consensus", "reader")
    _matrix(figure.add_subplot(1, 2, 2), numbers.model_diagnosis_confusion, classes,
            "Model against the final diagnosis", "final diagnosis", "model (most probable)")
    return figure


def regional_confusion_figure(numbers: ReportNumbers) -> Figure:
    figure = Figure(figsize=(6, 5.5))
    axes = figure.add_subplot()
    pooled = numbers.regional.confusion.sum(axis=0) if numbers.regional.confusion.size else np.zeros((9, 9), int)
    labels = ["not marked"] + [f"{code} {REGION_NAMES[code]}" for code in range(1, 9)]
    _matrix(axes, pooled, labels, "Regional confusion between readers (all findings)", "one reader", "another reader")
    return figure


def readers_over_time_figure(numbers: ReportNumbers) -> Figure:
    figure = Figure(figsize=(11, 4), layout="constrained")
    flagged = {(w.reader_id, w.period) for w in numbers.drift}
    readers = sorted({p.reader_id for p in numbers.periods})
    for index, measure in enumerate(("sensitivity", "specificity", "kappa")):
        axes = figure.add_subplot(1, 3, index + 1)
        for reader in readers:
            own = [p for p in numbers.periods if p.reader_id == reader]
            values = [getattr(p, measure) for p in own]
            line, = axes.plot(range(1, len(own) + 1), values, marker="o", markersize=3,
                              label=numbers.reader_names.get(reader, str(reader)))
            for n, p in enumerate(own):
                if (reader, p.period) in flagged:
                    axes.scatter([n + 1], [getattr(p, measure)], s=80, facecolors="none", edgecolors="red", zorder=3)
        unit = "week" if numbers.period_kind == "week" else "block of images"
        axes.set_xlabel(f"{unit} of the reader's reading (1 = first)")
        axes.set_ylabel(measure)
        axes.set_ylim(-0.05 if measure == "kappa" else 0, 1.05)
        axes.set_title(f"{measure} against consensus")
        _note_if_empty(axes, not readers, "no reads marked done in the audit")
    if readers:
        figure.axes[-1].legend(fontsize=7, loc="lower right")
    figure.suptitle("Readers over time (red rings: drift beyond chance)")
    return figure


# ------------------------------------------------------------------------------------------ tables

def _tables(numbers: ReportNumbers, folder: Path) -> list[Path]:
    written = [_save_table(folder, "findings", [
        "finding", "name", "present", "absent", "uncertain", "prevalence", "fleiss_kappa", "regional_kappa",
        "model_images", "model_positives", "auroc", "average_precision", "threshold", "sensitivity",
        "specificity", "air_tp", "air_fn", "n_tp", "n_fn",
    ], [[f.code, f.name, f.present, f.absent, f.uncertain, _number(f.prevalence, 4), _number(f.kappa, 4),
         _number(f.regional_kappa, 4),
         *([f.model.images, f.model.positives, _number(f.model.auroc, 4), _number(f.model.average_precision, 4),
            _number(f.model.operating_point.threshold, 4), _number(f.model.operating_point.sensitivity, 4),
            _number(f.model.operating_point.specificity, 4), _number(f.model.air_tp, 4), _number(f.model.air_fn, 4),
            f.model.n_tp, f.model.n_fn] if f.model else [""] * 11)]
        for f in numbers.findings])]
    written.append(_save_table(folder, "regions", ["finding", "region", "region_name", "fleiss_kappa"], [
        [f.code, code, REGION_NAMES[code], _number(f.regional_kappa_by_region[code - 1], 4)]
        for f in numbers.findings for code in range(1, 9)]))
    written.append(_save_table(folder, "readers", [
        "reader_id", "reader", "finding", "items", "sensitivity", "specificity", "kappa_vs_consensus",
        "regional_sensitivity", "regional_specificity",
    ], [[r.reader_id, r.name, r.finding, r.images, _number(r.sensitivity, 4), _number(r.specificity, 4),
         _number(r.kappa, 4), _number(r.regional_sensitivity, 4), _number(r.regional_specificity, 4)]
        for r in numbers.readers]))
    curve_rows = []
    for f in numbers.findings:
        if f.model is None:
            continue
        roc, pr = f.model.roc, f.model.pr
        curve_rows += [[f.code, "roc", _number(x, 6), _number(y, 6), _number(t, 6)]
                       for x, y, t in zip(roc.false_positive_rate, roc.true_positive_rate, roc.thresholds)]
        curve_rows += [[f.code, "pr", _number(x, 6), _number(y, 6), _number(t, 6)]
                       for x, y, t in zip(pr.recall, pr.precision, list(pr.thresholds) + [math.nan])]
    written.append(_save_table(folder, "curves", ["finding", "curve", "x", "y", "threshold"], curve_rows))
    classes = numbers.diagnosis_classes
    written.append(_save_table(folder, "diagnoses", ["comparison", "true", "given", "count"], [
        [name, classes[i], classes[j], int(matrix[i, j])]
        for name, matrix in (("reader_vs_consensus", numbers.readers_diagnosis_confusion),
                             ("model_vs_final", numbers.model_diagnosis_confusion))
        for i in range(len(classes)) for j in range(len(classes))]))
    written.append(_save_table(folder, "regional_confusion", ["finding", "region_one_reader", "region_another", "count"], [
        [code, i, j, int(numbers.regional.confusion[f, i, j])]
        for f, code in enumerate(numbers.regional.finding_codes) for i in range(9) for j in range(9)
        if numbers.regional.confusion[f, i, j]]))
    name = numbers.reader_names
    written.append(_save_table(folder, "reading_times", [
        "reader_id", "reader", "images", "median_seconds_per_image", "mean_seconds_per_image"],
        [[t.reader_id, name.get(t.reader_id, t.reader_id), t.images, _number(t.median_seconds_per_image, 1),
          _number(t.mean_seconds_per_image, 1)] for t in numbers.timings]))
    written.append(_save_table(folder, "reading_actions", ["reader_id", "reader", "action", "events", "median_seconds"],
        [[t.reader_id, name.get(t.reader_id, t.reader_id), action, count, _number(seconds, 1)]
         for t in numbers.timings for action, (count, seconds) in t.seconds_per_action.items()]))
    flagged = {(w.reader_id, w.period, w.measure) for w in numbers.drift}
    written.append(_save_table(folder, "reader_periods", [
        "reader_id", "reader", "period", "images", "sensitivity", "specificity", "kappa", "drift"],
        [[p.reader_id, name.get(p.reader_id, p.reader_id), p.period, p.images, _number(p.sensitivity, 4),
          _number(p.specificity, 4), _number(p.kappa, 4),
          ";".join(m for m in ("sensitivity", "specificity") if (p.reader_id, p.period, m) in flagged)]
         for p in numbers.periods]))
    written.append(_save_table(folder, "gold_scores", [
        "reader_id", "reader", "gold_images", "sensitivity", "specificity", "kappa", "regional_sensitivity",
        "regional_specificity", "diagnosis_accuracy"],
        [[g.reader_id, name.get(g.reader_id, g.reader_id), g.images, _number(g.findings.sensitivity, 4),
          _number(g.findings.specificity, 4), _number(g.findings.kappa, 4), _number(g.regions.sensitivity, 4),
          _number(g.regions.specificity, 4), _number(g.diagnosis_accuracy, 4)] for g in numbers.gold]))
    written.append(_save_table(folder, "repeat_scores", [
        "reader_id", "reader", "repeats", "intra_reader_kappa", "regional_kappa", "found_again", "diagnosis_agreement"],
        [[r.reader_id, name.get(r.reader_id, r.reader_id), r.repeats, _number(r.kappa, 4), _number(r.regional_kappa, 4),
          _number(r.findings.sensitivity, 4), _number(r.diagnosis_agreement, 4)] for r in numbers.repeats]))
    return written


# ----------------------------------------------------------------------------------------- summary

def _html_table(header: list[str], rows: list[list]) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def summary_html(numbers: ReportNumbers, title: str, label_source: str) -> str:
    findings = _html_table(
        ["finding", "present", "absent", "uncertain", "prevalence", "κ finding", "κ region", "AUROC", "AP",
         "threshold", "sens", "spec", "AIR (TP)", "AIR (FN)"],
        [[f.name, f.present, f.absent, f.uncertain, _number(f.prevalence), _number(f.kappa), _number(f.regional_kappa),
          *([_number(f.model.auroc), _number(f.model.average_precision), _number(f.model.operating_point.threshold),
             _number(f.model.operating_point.sensitivity), _number(f.model.operating_point.specificity),
             _number(f.model.air_tp), _number(f.model.air_fn)] if f.model else ["–"] * 7)]
         for f in numbers.findings])
    readers = _html_table(
        ["reader", "items", "sensitivity", "specificity", "κ vs consensus", "regional sens", "regional spec"],
        [[r.name, r.images, _number(r.sensitivity), _number(r.specificity), _number(r.kappa),
          _number(r.regional_sensitivity), _number(r.regional_specificity)]
         for r in numbers.readers if r.finding == ALL])
    timings = _html_table(
        ["reader", "images", "median s / image", "mean s / image"],
        [[numbers.reader_names.get(t.reader_id, t.reader_id), t.images, _number(t.median_seconds_per_image, 1),
          _number(t.mean_seconds_per_image, 1)] for t in numbers.timings])
    gold = _html_table(
        ["reader", "gold images", "sensitivity", "specificity", "κ vs gold", "regional sens", "regional spec",
         "diagnosis right"],
        [[numbers.reader_names.get(g.reader_id, g.reader_id), g.images, _number(g.findings.sensitivity),
          _number(g.findings.specificity), _number(g.findings.kappa), _number(g.regions.sensitivity),
          _number(g.regions.specificity), _number(g.diagnosis_accuracy)] for g in numbers.gold])
    repeats = _html_table(
        ["reader", "repeats", "intra-reader κ", "regional κ", "found again", "same diagnosis"],
        [[numbers.reader_names.get(r.reader_id, r.reader_id), r.repeats, _number(r.kappa), _number(r.regional_kappa),
          _number(r.findings.sensitivity), _number(r.diagnosis_agreement)] for r in numbers.repeats])
    figures = "".join(f'<figure><img src="{name}.png" alt="{name}"><figcaption><a href="{name}.pdf">{name}.pdf</a>'
                      f"</figcaption></figure>" for name in FIGURES)
    tables = " · ".join(f'<a href="{name}.csv">{name}.csv</a>' for name in TABLES)
    notes = "".join(f"<li>{html.escape(n)}</li>" for n in numbers.notes)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>body{{font-family:sans-serif;margin:2em;max-width:1100px}}table{{border-collapse:collapse;margin:1em 0}}
td,th{{border:1px solid #bbb;padding:3px 7px;text-align:right}}td:first-child,th:first-child{{text-align:left}}
img{{max-width:100%}}figure{{margin:1.5em 0}}</style></head><body>
<h1>{html.escape(title)}</h1>
<p>{numbers.images} images with reads or adjudications; {numbers.predicted_images} with a stored model prediction.
Labels: {html.escape(label_source)}. Readers' κ on {numbers.kappa_items} images with at least two gradable reads:
finding level {_number(numbers.kappa_overall)}, region level {_number(numbers.regional_kappa_overall)} (all findings pooled).
Model figures use the images with a final present/absent label and a prediction; the operating point has the best
harmonic mean of sensitivity and specificity there; AIR is the share of activation inside the final label's regions.</p>
{f"<ul>{notes}</ul>" if notes else ""}
<h2>Findings</h2>{findings}
<h2>Readers against the consensus (all findings)</h2>{readers}
<h2>Reading time (from the audit trail; gaps over 5 minutes are breaks)</h2>{timings}
<h2>Readers against gold-standard images</h2>{gold if numbers.gold else "<p>No gold-standard images read yet.</p>"}
<h2>Readers against themselves (blind repeat reads)</h2>{repeats if numbers.repeats else "<p>No repeat reads done yet.</p>"}
<p>Tables: {tables}</p>
<h2>Figures</h2>{figures}
</body></html>
"""


def write_report(numbers: ReportNumbers, folder: str | Path, title: str, label_source: str) -> WrittenReport:
    folder = Path(folder).expanduser()
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise OctantError(f"Cannot create {folder} ({error.strerror}); choose a folder you can write to.") from None
    written: list[Path] = []
    for name, draw in (("prevalence", prevalence_figure), ("kappa", kappa_figure),
                       ("regional_kappa", regional_kappa_figure), ("readers", readers_figure),
                       ("roc", roc_figure), ("pr", pr_figure), ("diagnoses", diagnoses_figure),
                       ("regional_confusion", regional_confusion_figure),
                       ("readers_over_time", readers_over_time_figure)):
        written += _save_figure(draw(numbers), folder, name)
    written += _tables(numbers, folder)
    _replace(folder / SUMMARY, summary_html(numbers, title, label_source).encode("utf-8"))
    written.append(folder / SUMMARY)
    return WrittenReport(folder, written)
