"""View-plan geometry, table-driven: letterbox, tiles, motion regions, zones, and the static plans."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from monitor.capture.view import static_plan
from monitor.config.camera import TilesConfig, ViewConfig, ZoneConfig
from monitor.model.preprocess import region_input, regions_to_inputs, resize_pil
from monitor.model.regions import (
    PixelBox,
    Zone,
    auto_tile_side,
    box_zone,
    fit_square,
    grid_boxes,
    letterbox_placement,
    merge_boxes,
    motion_boxes,
    tile_boxes,
    to_norm,
    to_pixels,
    zone_grid,
)


@pytest.mark.parametrize(
    ("src", "out", "placement"),
    [
        ((1920, 1080), (128, 128), (0, 28, 128, 72)),  # 16:9 into a square: bars top and bottom
        ((1080, 1920), (128, 128), (28, 0, 72, 128)),  # portrait: bars left and right
        ((640, 640), (128, 128), (0, 0, 128, 128)),  # same aspect: no padding
        ((64, 48), (128, 128), (0, 16, 128, 96)),  # smaller than the input: upscaled, not refused
        ((2560, 1440), (192, 160), (0, 26, 192, 108)),  # a non-square input
    ],
)
def test_letterbox_keeps_the_whole_region(
    src: tuple[int, int], out: tuple[int, int], placement: tuple[int, int, int, int]
) -> None:
    assert letterbox_placement(*src, *out) == placement


def test_letterbox_pads_black_and_never_crops() -> None:
    frame = np.full((1080, 1920, 3), 200, np.uint8)
    frame[:, :10] = (255, 0, 0)  # a red strip at the very left edge survives
    x = region_input(Image.fromarray(frame), (0, 0, 1920, 1080), (128, 128))
    assert x.shape == (128, 128, 3)
    assert (x[:28] == 0).all() and (x[100:] == 0).all()  # padding
    assert x[64, 0, 0] > 200 and x[64, 0, 2] < 100  # the edge strip is still there


def test_a_whole_square_image_is_the_same_under_every_resize_method() -> None:
    """Old ``crop`` models keep working: on the model's aspect, crop = squish = letterbox."""
    rng = np.random.default_rng(0)
    img = Image.fromarray(rng.integers(0, 255, (160, 160, 3), dtype=np.uint8))
    crop = resize_pil(img, (128, 128), "crop")
    assert (resize_pil(img, (128, 128), "letterbox") == crop).all()
    assert (resize_pil(img, (128, 128), "squish") == crop).all()


@pytest.mark.parametrize(
    ("size", "side", "overlap", "count"),
    [
        ((1920, 1080), 512, 0.15, (5, 3)),
        ((2560, 1440), 512, 0.15, (6, 4)),
        ((1280, 720), 512, 0.15, (3, 2)),
        ((640, 480), 480, 0.15, (2, 1)),
        ((1080, 1920), 512, 0.15, (3, 5)),  # portrait
        ((512, 512), 512, 0.15, (1, 1)),
        ((1920, 1080), 1080, 0.0, (2, 1)),
    ],
)
def test_tiles_cover_every_pixel_with_the_overlap_asked(
    size: tuple[int, int], side: int, overlap: float, count: tuple[int, int]
) -> None:
    w, h = size
    tiles = tile_boxes(w, h, side, overlap)
    cols = len({t[0] for t in tiles})
    rows = len({t[1] for t in tiles})
    assert (cols, rows) == count
    covered = np.zeros((h, w), bool)
    for x0, y0, x1, y1 in tiles:
        assert (x1 - x0, y1 - y0) == (side, side) and 0 <= x0 and x1 <= w and 0 <= y0 and y1 <= h
        covered[y0:y1, x0:x1] = True
    assert covered.all()
    xs = sorted({t[0] for t in tiles})
    for a, b in zip(xs, xs[1:], strict=False):
        assert (a + side - b) / side >= overlap - 1e-9


@pytest.mark.parametrize(
    ("size", "input_side", "downscale", "side"),
    [
        ((1920, 1080), 128, 4.0, 512),
        ((1920, 1080), 192, 4.0, 768),
        ((1920, 1080), 320, 4.0, 1080),  # capped at the short side
        ((100, 80), 128, 4.0, 80),  # a frame smaller than the input: one tile, upscaled later
    ],
)
def test_auto_tile_side(
    size: tuple[int, int], input_side: int, downscale: float, side: int
) -> None:
    assert auto_tile_side(*size, input_side, downscale) == side


@pytest.mark.parametrize(("rows", "cols", "overlap"), [(2, 3, 0.2), (1, 1, 0.0), (3, 4, 0.5)])
def test_given_grids_cover_the_frame(rows: int, cols: int, overlap: float) -> None:
    tiles = grid_boxes(1920, 1080, rows, cols, overlap)
    assert len(tiles) == rows * cols
    assert max(t[2] for t in tiles) == 1920 and max(t[3] for t in tiles) == 1080
    assert min(t[0] for t in tiles) == 0 and min(t[1] for t in tiles) == 0


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: tile_boxes(1920, 1080, 512, 1.0), "overlap"),
        (lambda: tile_boxes(1920, 1080, 2000, 0.1), "tile side"),
        (lambda: grid_boxes(1920, 1080, 0, 2, 0.1), "rows and cols"),
    ],
)
def test_bad_tile_geometry_is_refused(call, message: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError, match=message):
        call()


@pytest.mark.parametrize(
    ("box", "min_side", "expected"),
    [
        ((10, 10, 30, 50), 128, (0, 0, 128, 128)),  # grown, shifted inside at the corner
        ((1900, 500, 1920, 540), 128, (1792, 456, 1920, 584)),  # right edge: shifted, not cut
        (
            (100, 100, 500, 300),
            128,
            (100, 0, 500, 400),
        ),  # larger than min: squared on the long side
        ((0, 0, 50, 50), 128, (0, 0, 100, 100)),  # frame smaller than the square (100 x 100 frame)
    ],
)
def test_fit_square(box: PixelBox, min_side: int, expected: PixelBox) -> None:
    w, h = (100, 100) if expected[2] == 100 else (1920, 1080)
    assert fit_square(box, min_side, w, h) == expected


@pytest.mark.parametrize(
    ("boxes", "merged"),
    [
        ([(0, 0, 10, 10), (5, 5, 20, 20)], [(0, 0, 20, 20)]),
        ([(0, 0, 10, 10), (10, 10, 20, 20)], [(0, 0, 10, 10), (10, 10, 20, 20)]),  # touching only
        ([(0, 0, 10, 10), (8, 0, 30, 10), (28, 0, 40, 10)], [(0, 0, 40, 10)]),  # a chain
        ([], []),
    ],
)
def test_merge_boxes(boxes: list[PixelBox], merged: list[PixelBox]) -> None:
    assert sorted(merge_boxes(boxes)) == sorted(merged)


def _mask(cells: list[tuple[int, int, int, int]], gw: int = 160, gh: int = 90) -> np.ndarray:
    m = np.zeros((gh, gw), bool)
    for x0, y0, x1, y1 in cells:
        m[y0:y1, x0:x1] = True
    return m


@pytest.mark.parametrize(
    ("cells", "max_regions", "count"),
    [
        ([(10, 10, 12, 13)], 4, 1),  # one walker: one square
        ([(10, 10, 12, 13), (12, 14, 14, 16)], 4, 1),  # two blobs of one walker: merged
        ([(5, 5, 7, 7), (60, 5, 62, 7), (120, 5, 122, 7), (5, 70, 7, 72), (80, 70, 82, 72)], 3, 3),
        ([], 4, 0),
    ],
)
def test_motion_boxes_are_squares_at_least_the_input_merged_and_capped(
    cells: list[tuple[int, int, int, int]], max_regions: int, count: int
) -> None:
    boxes = motion_boxes(_mask(cells), 1920, 1080, 128, 0.5, max_regions)
    assert len(boxes) == count
    for x0, y0, x1, y1 in boxes:
        assert x1 - x0 == y1 - y0 >= 128 and 0 <= x0 < x1 <= 1920 and 0 <= y0 < y1 <= 1080
    for i, a in enumerate(boxes):
        for b in boxes[i + 1 :]:
            assert min(a[2], b[2]) <= max(a[0], b[0]) or min(a[3], b[3]) <= max(a[1], b[1])


def test_the_cap_keeps_the_biggest_change() -> None:
    big, small = (100, 40, 120, 60), (10, 10, 11, 11)
    (box,) = motion_boxes(_mask([small, big]), 1920, 1080, 128, 0.5, 1)
    assert box[0] > 1000  # the big blob (x cells 100..120 → 1200..1440 px) won


LEFT = Zone("left", ((0.0, 0.0), (0.5, 0.0), (0.5, 1.0), (0.0, 1.0)), True, 0.5)
ROAD = Zone("road", ((0.0, 0.8), (1.0, 0.8), (1.0, 1.0), (0.0, 1.0)), False)


@pytest.mark.parametrize(
    ("zones", "box", "share", "zone"),
    [
        ((LEFT,), (0, 0, 480, 540), 1.0, "left"),
        ((LEFT,), (1440, 0, 1920, 540), 0.0, None),  # outside the only include zone: not looked at
        ((LEFT,), (720, 0, 1200, 540), 0.5, "left"),
        ((ROAD,), (0, 900, 480, 1080), 0.0, None),  # inside an exclude zone
        ((ROAD,), (0, 0, 480, 540), 1.0, None),  # exclude only: no zone to name
        ((LEFT, ROAD), (0, 540, 480, 1080), 0.6, "left"),
    ],
)
def test_zones_include_and_exclude(
    zones: tuple[Zone, ...], box: PixelBox, share: float, zone: str | None
) -> None:
    got_share, got_zone = box_zone(box, zones, zone_grid(zones, 1920, 1080), 1920, 1080)
    assert got_share == pytest.approx(share, abs=0.07)  # a coarse grid: 30 px cells at 1080p
    assert (None if got_zone is None else got_zone.name) == zone


@pytest.mark.parametrize(
    ("box", "size"),
    [
        ((0, 0, 1920, 1080), (1920, 1080)),
        ((384, 216, 768, 540), (1920, 1080)),
        ((0, 0, 5, 7), (5, 7)),
    ],
)
def test_normalised_boxes_round_trip(box: PixelBox, size: tuple[int, int]) -> None:
    assert to_pixels(to_norm(box, *size), *size) == box


@pytest.mark.parametrize(
    ("view", "size", "kinds"),
    [
        (ViewConfig(), (1920, 1080), ["full"]),  # auto on 1080p: + motion regions, per frame
        (ViewConfig(auto_adds="tiles"), (1920, 1080), ["full"] + ["tile"] * 15),
        (ViewConfig(), (320, 240), ["full"]),  # auto on a small frame: full only
        (ViewConfig(plan="full"), (1920, 1080), ["full"]),
        (ViewConfig(plan="tiles"), (1280, 720), ["tile"] * 6),
        (ViewConfig(plan="tiles", tiles=TilesConfig(rows=2, cols=2)), (1920, 1080), ["tile"] * 4),
        (ViewConfig(plan="tiles"), (100, 80), ["tile"] * 2),  # smaller than the input: upscaled
        (ViewConfig(plan="motion"), (1920, 1080), []),  # the full frame joins on schedule
    ],
)
def test_static_plans(view: ViewConfig, size: tuple[int, int], kinds: list[str]) -> None:
    assert list(static_plan(view, *size, (128, 128)).kinds) == kinds


def test_regions_to_inputs_scales_the_frame_once_and_masks_zones() -> None:
    frame = np.full((1080, 1920, 3), 180, np.uint8)
    frame[:, 960:] = (0, 0, 255)  # right half red (BGR)
    mask = np.zeros((1080, 1920), np.uint8)
    mask[:, :960] = 255  # only the left half is visible
    out = regions_to_inputs(frame, [(0, 0, 1920, 1080), (1408, 0, 1920, 512)], (128, 128), mask)
    assert out.shape == (2, 128, 128, 3)
    assert out[1].max() == 0  # a region wholly outside the include zone is black
    assert out[0][64, 10].tolist() == [180, 180, 180] and out[0][64, 120].max() == 0


@pytest.mark.parametrize(
    ("polygon", "message"),
    [
        ([], "at least 3 points"),
        ([[0.1, 0.1], [0.5, 0.5]], "at least 3 points"),
        ([[0.1, 0.1], [1.5, 0.1], [0.5, 0.9]], "outside the frame"),
        ([[0.1, 0.1], [0.2, 0.2], [0.3, 0.3]], "no area"),
    ],
)
def test_malformed_zones_are_refused(polygon: list[list[float]], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ZoneConfig(name="z", polygon=polygon)


def test_a_model_sized_crop_is_the_same_through_the_runtime_and_the_parity_path() -> None:
    """Slice-aided training crops are written at the model input: parity's file path sees the runtime's pixels."""
    import cv2

    rng = np.random.default_rng(1)
    rgb = rng.integers(0, 255, (128, 128, 3), dtype=np.uint8)
    runtime = regions_to_inputs(
        cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [(0, 0, 128, 128)], (128, 128)
    )
    for method in ("crop", "squish", "letterbox"):
        assert (resize_pil(Image.fromarray(rgb), (128, 128), method) == runtime[0]).all()
