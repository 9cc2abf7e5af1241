"""Night from pixels: each frame is ``day``, ``night_ir`` or ``low_light``, held per camera with hysteresis.

A camera's night is what its sensor sees, not what the wall clock says: an IR
camera switches to grayscale under its own illuminator whenever the light
falls, whatever the hour or the time zone the report runs in. The frame's
class comes from the statistics the capture side already measures
(``monitor.model.image_stats``):

- ``night_ir``: the frame has (almost) no colour — an IR camera at night;
- ``low_light``: colour, but dark — dusk, or a colour camera at night;
- ``day``: everything else.

A camera changes class only after ``switch_after`` consecutive frames agree on
the new one, so a passing headlight or one gray frame does not flip it.

Pure: no clock, no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from monitor.types import LightClass


@dataclass(frozen=True, slots=True)
class NightSettings:
    """Validated by ``monitor.config.NightConfig``."""

    gray_colourfulness: float = 0.02  # below: no colour (image_stats.GRAYSCALE_COLOURFULNESS)
    low_light_brightness: float = 0.18  # mean luma (0..1) below which a colour frame is low-light
    switch_after: int = 5


def frame_light(stats: Mapping[str, float], settings: NightSettings) -> LightClass:
    """The light class of one frame from its image statistics."""
    if stats.get("colourfulness", 1.0) < settings.gray_colourfulness:
        return "night_ir"
    if stats.get("brightness", 1.0) < settings.low_light_brightness:
        return "low_light"
    return "day"


class NightTracker:
    """Each camera's current light class, with hysteresis."""

    def __init__(self, settings: NightSettings) -> None:
        self.settings = settings
        self._state: dict[str, LightClass] = {}
        self._run: dict[str, tuple[LightClass, int]] = {}

    def observe(self, camera: str, stats: Mapping[str, float] | None) -> LightClass | None:
        """Add one frame; returns the camera's class (None until it has seen a frame with statistics)."""
        if stats is None:
            return self._state.get(camera)
        seen = frame_light(stats, self.settings)
        current = self._state.get(camera)
        if current is None:  # the first frame decides: there is nothing to be stable against
            self._state[camera] = seen
            self._run[camera] = (seen, 0)
            return seen
        if seen == current:
            self._run[camera] = (current, 0)
            return current
        cls, n = self._run.get(camera, (seen, 0))
        n = n + 1 if cls == seen else 1
        self._run[camera] = (seen, n)
        if n >= self.settings.switch_after:
            self._state[camera] = seen
            self._run[camera] = (seen, 0)
        return self._state[camera]

    def state(self, camera: str) -> LightClass | None:
        return self._state.get(camera)
