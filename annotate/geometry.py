"""The eight disc–fovea regions (Son et al., section 2.1), exactly as ``docs/geometry.md`` fixes them.

Every function here classifies points with the same arithmetic (``RegionGeometry.classify_ab``):
a point ``p`` is written as ``a = (p − disc)·u`` along the disc→fovea axis and ``b = (p − disc)·n``
across it, ``n`` pointing up the image ("superior"). Pixel (i, j) is tested at its centre
(j + 0.5, i + 0.5). ``region_label_map`` finds, row by row, where each test changes sign and fills
the runs between those places, then re-tests the pixels beside every change with the exact
arithmetic, so the map, ``region_at`` and ``region_mask`` ("center") agree pixel for pixel.
``canonical_region_shapes`` builds the same regions once with shapely, in the frame where disc is
(0, 0) and fovea (1, 0); ``region_polygons`` (export) and the canvas map them to image pixels.
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import shapely
from shapely.affinity import affine_transform
from shapely.geometry import Point, box

from annotate.fov import FieldOfView
from storage.errors import GeometryError

REGION_NAMES: dict[int, str] = {
    1: "macula",
    2: "superior_disc",
    3: "inferior_disc",
    4: "temporal",
    5: "superotemporal",
    6: "inferotemporal",
    7: "superonasal",
    8: "inferonasal",
}
REGION_CODES: dict[str, int] = {name: code for code, name in REGION_NAMES.items()}
OUTSIDE = 0

# Radii of the two circles as fractions of D (Son et al., section 2.1).
DISC_RADIUS_FRACTION = 2 / 5
FOVEA_RADIUS_FRACTION = 2 / 3
# In a real 45° fundus photo the disc–fovea distance is about a quarter of the image diagonal
# (≈ 1300 px of 5150 px in IDRiD's 4288 × 2848). Below 2 % of the diagonal (ten times smaller than
# any real eye) the two clicks are almost surely a slip and the regions would be a few pixels wide.
MIN_DISTANCE_FRACTION_OF_DIAGONAL = 0.02
# Circle polygons: segments per quarter circle. At 64 the chord sags by r·(π/256)²/8 ≈ 2e-5·r,
# about 0.02 px for a 1000-px circle.
CIRCLE_SEGMENTS_PER_QUARTER = 64
# region_mask classifies at most this many sample points at once (bounded memory, ~100 MB).
MASK_SAMPLES_PER_BAND = 1 << 20

Point2 = tuple[float, float]


@dataclass(frozen=True)
class RegionGeometry:
    """Validated landmarks and the derived frame: ``u`` disc→fovea, ``n`` superior (up)."""

    disc: Point2
    fovea: Point2
    distance: float          # D
    u: Point2
    n: Point2
    disc_radius: float       # rd = 2/5 D
    fovea_radius: float      # rf = 2/3 D
    chord: float             # c = (D² + rd² − rf²) / 2D, where the lens is split

    @classmethod
    def from_landmarks(
        cls, disc: Sequence[float], fovea: Sequence[float], shape: Sequence[int] | None = None
    ) -> RegionGeometry:
        """Check the landmarks (``shape`` = (h, w, ...) enables the in-image and size checks)."""
        dx, dy, fx, fy = (float(v) for v in (*disc[:2], *fovea[:2]))
        if not all(math.isfinite(v) for v in (dx, dy, fx, fy)):
            raise GeometryError("The disc or fovea position is not a number; place both landmarks again.")
        distance = math.hypot(fx - dx, fy - dy)
        if distance == 0.0:
            raise GeometryError("The disc and fovea are at the same place; place the fovea at the centre of the macula.")
        if shape is not None:
            h, w = int(shape[0]), int(shape[1])
            for label, (x, y) in (("optic disc", (dx, dy)), ("fovea", (fx, fy))):
                if not (0.0 <= x <= w and 0.0 <= y <= h):
                    raise GeometryError(
                        f"The {label} at ({x:.0f}, {y:.0f}) lies outside the {w} × {h} image; place it on the photo."
                    )
            diagonal = math.hypot(w, h)
            if distance < MIN_DISTANCE_FRACTION_OF_DIAGONAL * diagonal:
                raise GeometryError(
                    f"The disc and fovea are only {distance:.1f} px apart ({distance / diagonal:.1%} of the image "
                    f"diagonal); place the fovea at the centre of the macula, not next to the disc."
                )
        ux, uy = (fx - dx) / distance, (fy - dy) / distance
        # Of the two normals pick the one pointing up (negative y). When the axis is exactly
        # vertical neither does; take (−uy, ux) so that the rule stays deterministic.
        nx, ny = (uy, -ux) if ux > 0 else (-uy, ux)
        rd = DISC_RADIUS_FRACTION * distance
        rf = FOVEA_RADIUS_FRACTION * distance
        chord = (distance**2 + rd**2 - rf**2) / (2 * distance)
        return cls((dx, dy), (fx, fy), distance, (ux, uy), (nx, ny), rd, rf, chord)

    def to_ab(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        px, py = x - self.disc[0], y - self.disc[1]
        return px * self.u[0] + py * self.u[1], px * self.n[0] + py * self.n[1]

    def classify_ab(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Region codes 1..8 for frame coordinates, with the precedence of docs/geometry.md."""
        a = np.asarray(a, dtype=np.float64)
        b = np.asarray(b, dtype=np.float64)
        superior = b > 0
        b2 = b * b
        in_fovea = (a - self.distance) ** 2 + b2 <= self.fovea_radius**2
        in_disc = a * a + b2 <= self.disc_radius**2
        macula = in_fovea & (a >= self.chord)
        disc = in_disc & (a <= self.chord) & ~macula
        temporal = (a >= self.distance) & (np.abs(b) <= self.fovea_radius) & ~macula
        codes = np.where(a >= 0, np.where(superior, 5, 6), np.where(superior, 7, 8)).astype(np.uint8)
        codes[temporal] = 4
        codes[disc] = np.where(superior[disc], 2, 3)
        codes[macula] = 1
        return codes

    def classify_xy(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        return self.classify_ab(*self.to_ab(np.asarray(x, np.float64), np.asarray(y, np.float64)))


def region_at(
    disc: Sequence[float],
    fovea: Sequence[float],
    point: Sequence[float],
    shape: Sequence[int] | None = None,
    fov: FieldOfView | None = None,
) -> int:
    """Region code under ``point`` (x, y) for hit-testing; 0 outside the image or the FOV circle."""
    geometry = RegionGeometry.from_landmarks(disc, fovea, shape)
    x, y = float(point[0]), float(point[1])
    if not (math.isfinite(x) and math.isfinite(y)):
        return OUTSIDE
    if shape is not None and not (0.0 <= x < shape[1] and 0.0 <= y < shape[0]):
        return OUTSIDE
    if fov is not None and (x - fov.cx) ** 2 + (y - fov.cy) ** 2 > fov.r**2:
        return OUTSIDE
    return int(geometry.classify_xy(np.array([x]), np.array([y]))[0])


def _row_breakpoints(geometry: RegionGeometry, ys: np.ndarray, width: int) -> np.ndarray:
    """Per row, the first column index at which each test may change (sorted, in [0, width])."""
    (dx, dy), (ux, uy), (nx, ny) = geometry.disc, geometry.u, geometry.n
    ry = ys - dy
    xs = []
    with np.errstate(divide="ignore", invalid="ignore"):
        for level in (0.0, geometry.chord, geometry.distance):        # a = level
            xs.append(dx + (level - ry * uy) / ux if ux != 0 else np.full_like(ry, np.nan))
        for level in (0.0, geometry.fovea_radius, -geometry.fovea_radius):  # b = level
            xs.append(dx + (level - ry * ny) / nx if nx != 0 else np.full_like(ry, np.nan))
        fx, fy = geometry.fovea
        for cx, cy, r in ((dx, dy, geometry.disc_radius), (fx, fy, geometry.fovea_radius)):
            half = np.sqrt(r * r - (ys - cy) ** 2)                    # NaN where the row misses
            xs.extend((cx - half, cx + half))
    x = np.stack(xs, axis=1)
    # Pixel j is on the far side of x when its centre j + 0.5 >= x.
    cols = np.ceil(np.nan_to_num(x, nan=width) - 0.5)
    return np.sort(np.clip(cols, 0, width).astype(np.int64), axis=1)


def region_label_map(
    disc: Sequence[float],
    fovea: Sequence[float],
    shape: Sequence[int],
    fov_mask: np.ndarray | None = None,
) -> np.ndarray:
    """uint8 map of region codes (0 outside ``fov_mask``, 1..8 inside), one per pixel centre."""
    h, w = int(shape[0]), int(shape[1])
    geometry = RegionGeometry.from_landmarks(disc, fovea, (h, w))
    rows = np.arange(h)
    ys = rows + 0.5
    cuts = _row_breakpoints(geometry, ys, w)
    bounds = np.concatenate([np.zeros((h, 1), np.int64), cuts, np.full((h, 1), w, np.int64)], axis=1)
    lengths = np.diff(bounds, axis=1)
    # Label each run at its middle pixel; runs of length 0 are dropped by np.repeat.
    middle = np.minimum(bounds[:, :-1] + np.maximum(lengths - 1, 0) // 2, w - 1)
    run_codes = geometry.classify_xy(middle + 0.5, np.broadcast_to(ys[:, None], middle.shape))
    labels = np.repeat(run_codes.ravel(), lengths.ravel()).reshape(h, w)
    # Re-test the pixels on both sides of every change with the exact arithmetic, so that rounding
    # in the analytic crossings can never move a boundary pixel.
    edge_cols = np.concatenate([cuts - 1, cuts], axis=1)
    inside = (edge_cols >= 0) & (edge_cols < w)
    edge_rows = np.broadcast_to(rows[:, None], edge_cols.shape)[inside]
    edge_cols = edge_cols[inside]
    labels[edge_rows, edge_cols] = geometry.classify_xy(edge_cols + 0.5, edge_rows + 0.5)
    if fov_mask is not None:
        if fov_mask.shape[:2] != (h, w):
            raise GeometryError(
                f"The field-of-view mask is {fov_mask.shape[1]} × {fov_mask.shape[0]} but the image is {w} × {h}; "
                "detect the field of view on this image again."
            )
        np.multiply(labels, fov_mask.astype(bool, copy=False), out=labels)
    return labels


def region_mask(
    codes: Iterable[int],
    disc: Sequence[float],
    fovea: Sequence[float],
    shape: Sequence[int],
    out_shape: Sequence[int],
    mode: str = "area",
    fov_mask: np.ndarray | None = None,
    *,
    box: Sequence[float] | None = None,
    samples_per_side: int = 8,
) -> np.ndarray:
    """float32 mask (out_h, out_w) of the union of ``codes``, e.g. a regional cue for training.

    The output grid covers ``box`` = (x0, y0, x1, y1) of the image (default: the whole image, or
    the FOV crop box when the network sees a cropped photo); cells may be non-square, the regions
    stay defined in original pixels. ``mode="center"`` tests each cell's centre (0 or 1);
    ``mode="area"`` is the fraction of the cell covered, estimated on a regular
    ``samples_per_side``² grid of sub-cell centres (8 → steps of 1/64, exact for cells wholly inside
    or outside). ``fov_mask`` (image resolution) zeroes samples falling outside the field of view.
    """
    if mode not in ("area", "center"):
        raise ValueError(f"mode must be 'area' or 'center', not {mode!r}")
    h, w = int(shape[0]), int(shape[1])
    geometry = RegionGeometry.from_landmarks(disc, fovea, (h, w))
    out_h, out_w = int(out_shape[0]), int(out_shape[1])
    x0, y0, x1, y1 = (0.0, 0.0, float(w), float(h)) if box is None else (float(v) for v in box)
    s = 1 if mode == "center" else int(samples_per_side)
    xs = x0 + (np.arange(out_w * s) + 0.5) * ((x1 - x0) / (out_w * s))
    ys = y0 + (np.arange(out_h * s) + 0.5) * ((y1 - y0) / (out_h * s))
    wanted = np.zeros(9, dtype=bool)
    wanted[[int(c) for c in codes]] = True
    inside_x = (xs >= 0) & (xs < w)
    inside_y = (ys >= 0) & (ys < h)
    fov = None if fov_mask is None else fov_mask.astype(bool, copy=False)
    cols = np.clip(np.floor(xs).astype(np.int64), 0, w - 1)
    px = xs - geometry.disc[0]
    out = np.empty((out_h, out_w), np.float32)
    # Bands of output rows keep the temporaries near MASK_SAMPLES_PER_BAND samples (512² cells × 64
    # samples would otherwise need gigabytes).
    band = max(1, MASK_SAMPLES_PER_BAND // (out_w * s * s))
    for top in range(0, out_h, band):
        sub = slice(top * s, min(out_h, top + band) * s)
        py = ys[sub] - geometry.disc[1]
        a = (px * geometry.u[0])[None, :] + (py * geometry.u[1])[:, None]
        b = (px * geometry.n[0])[None, :] + (py * geometry.n[1])[:, None]
        hit = wanted[geometry.classify_ab(a, b)]
        hit &= inside_x[None, :] & inside_y[sub, None]
        if fov is not None:
            rows = np.clip(np.floor(ys[sub]).astype(np.int64), 0, h - 1)
            hit &= fov[np.ix_(rows, cols)]
        out[top:top + hit.shape[0] // s] = hit.reshape(-1, s, out_w, s).mean(axis=(1, 3), dtype=np.float32)
    return out


def region_extent(disc: Sequence[float], distance: float, width: float, height: float) -> float:
    """How far (in units of D) the open regions must reach to cover every image corner from the disc.

    A power of two, at least 4, so that ``canonical_region_shapes`` is built for only a few extents.
    """
    reach = max(math.hypot(cx - disc[0], cy - disc[1])
                for cx, cy in ((0.0, 0.0), (width, 0.0), (0.0, height), (width, height)))
    need = reach / max(distance, 1e-6) + 1.0
    return float(2 ** math.ceil(math.log2(max(need, 4.0))))


def canonical_region_shapes(extent: float = 4.0,
                            quad_segs: int = CIRCLE_SEGMENTS_PER_QUARTER) -> dict[int, shapely.Geometry]:
    """The eight regions in the canonical frame: disc at (0, 0), fovea at (1, 0), y = b = superior.

    The construction is invariant to translation, rotation and scale (docs/geometry.md), so this is the
    only place that builds it; ``region_polygons`` and the canvas (``ui.region_shapes``) map these
    shapes to image pixels. Open regions are cut at ±``extent`` (units of D). Cached.
    """
    return dict(_canonical_region_shapes(float(extent), int(quad_segs)))


@lru_cache(maxsize=16)
def _canonical_region_shapes(extent: float, quad_segs: int) -> dict[int, shapely.Geometry]:
    g = RegionGeometry.from_landmarks((0.0, 0.0), (1.0, 0.0))   # D = 1: rd, rf and c in units of D
    far = extent
    # In the (a, b) frame the half-planes are axis-aligned boxes.
    fovea_circle = Point(1.0, 0.0).buffer(g.fovea_radius, quad_segs=quad_segs)
    disc_circle = Point(0.0, 0.0).buffer(g.disc_radius, quad_segs=quad_segs)
    macula = fovea_circle.intersection(box(g.chord, -far, far, far))
    disc_part = disc_circle.intersection(box(-far, -far, g.chord, far)).difference(macula)
    temporal = box(1.0, -g.fovea_radius, far, g.fovea_radius).difference(macula)
    taken = shapely.union_all([macula, disc_part, temporal])
    upper, lower = box(-far, 0.0, far, far), box(-far, -far, far, 0.0)
    temporal_side, nasal_side = box(0.0, -far, far, far), box(-far, -far, 0.0, far)
    return {
        1: macula,
        2: disc_part.intersection(upper),
        3: disc_part.intersection(lower),
        4: temporal,
        5: temporal_side.intersection(upper).difference(taken),
        6: temporal_side.intersection(lower).difference(taken),
        7: nasal_side.intersection(upper).difference(disc_circle),
        8: nasal_side.intersection(lower).difference(disc_circle),
    }


def _canonical_to_image(geometry: RegionGeometry) -> list[float]:
    """Shapely affine matrix from the canonical frame (a/D, b/D) to image (x, y)."""
    (ux, uy), (nx, ny), (dx, dy), d = geometry.u, geometry.n, geometry.disc, geometry.distance
    return [d * ux, d * nx, d * uy, d * ny, dx, dy]


def region_polygons(
    disc: Sequence[float],
    fovea: Sequence[float],
    shape: Sequence[int],
    fov: FieldOfView | None = None,
) -> dict[int, shapely.Geometry]:
    """Shapely geometry of each region (codes 1..8), clipped to the image and the FOV circle.

    The canonical shapes mapped to image pixels. A region that falls wholly outside is an empty geometry.
    """
    h, w = int(shape[0]), int(shape[1])
    g = RegionGeometry.from_landmarks(disc, fovea, (h, w))
    shapes = canonical_region_shapes(region_extent(g.disc, g.distance, w, h))
    clip: shapely.Geometry = box(0.0, 0.0, float(w), float(h))
    if fov is not None:
        clip = clip.intersection(Point(fov.cx, fov.cy).buffer(fov.r, quad_segs=CIRCLE_SEGMENTS_PER_QUARTER))
    matrix = _canonical_to_image(g)
    return {code: affine_transform(geom, matrix).intersection(clip) for code, geom in shapes.items()}


def mirror_landmarks(point: Point2, width: int) -> Point2:
    """A landmark after flipping the photo left–right (x → w − x), as augmentation needs it."""
    return (width - point[0], point[1])
