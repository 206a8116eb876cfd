"""The colours of findings and of the model's overlays, in one place.

A fundus photo is red-orange with a yellow disc; reds, oranges and yellows vanish on it, and a
translucent fill of a complementary colour mixes with it into grey. The four lesion maps are
therefore drawn nearly opaque, each in a colour far from the fundus, from the disc outline's
yellow and the cup's pink, and from the others. The lesions that lie side by side (haemorrhages
and microaneurysms, hard and soft exudates) stay apart for red-green colour blindness too; the
pair that looks alike to protanopes, hard exudates' blue and microaneurysms' magenta, differs in
shape (clusters of blobs, single dots). A finding that has a lesion map (its catalogue
``lesion_channel``) is shown in that map's colour everywhere: in the answer panel, on the
regions a reader marks, and in the review screen.
"""
from __future__ import annotations

from collections.abc import Iterable
from itertools import cycle

from PySide6.QtGui import QColor

from storage.catalogue import FindingSpec

# by the catalogue's lesion channel (models.segmentation.stored_names.LESION_NAMES)
LESION_COLOURS = {
    "HE": "#00E5FF",   # haemorrhages: cyan, light on the dark red blots
    "EX": "#2962FF",   # hard exudates: blue, dark on the bright yellow spots
    "MA": "#E040FB",   # microaneurysms: magenta
    "SE": "#AAFF00",   # soft exudates (cotton wool): lime
}
LESION_ALPHA = 215     # of 255: the spots are small; Shift+L shows the photo under them

# The other findings take these in turn: saturated colours away from the lesion maps' and the fundus's.
FINDING_COLOURS = ("#FFEA00", "#1DE9B6", "#FF4081", "#00B0FF", "#EA80FC", "#7C4DFF", "#FFAB40", "#B388FF")

VESSEL_COLOUR = "#F0F0F0"   # neutral: the colours stay for findings
DISC_COLOUR, CUP_COLOUR = "#FFD600", "#FF4081"
OVERLAY_ALPHA = 110         # of 255, vessels' fill


def finding_colours(findings: Iterable[FindingSpec]) -> dict[str, QColor]:
    """Each finding's colour by code: its lesion map's, else the next of ``FINDING_COLOURS``."""
    others = cycle(FINDING_COLOURS)
    return {finding.code: QColor(LESION_COLOURS.get(finding.lesion_channel or "") or next(others))
            for finding in findings}
