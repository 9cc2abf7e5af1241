"""Audit sampling: keep some frames the model did *not* alert on, for humans to label.

Precision alone does not say whether a campsite is safe: an alert that never
fired leaves no event to reject. So besides alerts, each camera keeps a few
non-alert frames in three strata, checked in this order:

* ``near_threshold`` — the alert label scored just under the threshold;
* ``low_confidence`` — the model's top probability was low (it was unsure);
* ``random`` — a uniform sample of the remaining non-alert frames.

The strata do not overlap (a frame goes to the first that fits), so each is a
sample of its own part of the non-alert frames: ``random`` covers only the
confident frames left after the other two. A miss estimate must therefore
combine all three, each stratum's labelled miss fraction scaled by its size —
which is why every eligible frame is counted per stratum (``population``),
even though a per-hour cap limits how many are kept.

"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Mapping

from monitor.config import AuditConfig

STRATA = ("near_threshold", "low_confidence", "random")


class AuditSampler:
    """Chooses which non-alert frames to keep, per camera.

    Args:
        cfg: sampling rates and the per-hour cap.
        seed: seeds the random stratum (tests, replays); None for a fresh seed. Each
            camera draws from its own generator seeded by (seed, camera), so which
            frames a camera keeps depends only on its own frames, not on how the
            cameras' threads happened to interleave.
    """

    def __init__(self, cfg: AuditConfig, seed: int | None = None) -> None:
        self.cfg = cfg
        self._seed = seed
        self._fresh = random.Random(seed)
        self._rngs: dict[str, random.Random] = {}
        self._kept: dict[str, deque[float]] = {}
        self.population: dict[str, dict[str, int]] = {}
        self.sampled: dict[str, dict[str, int]] = {}

    def choose(
        self,
        camera: str,
        at: float,
        top_prob: float,
        alert_score: float,
        threshold: float,
        in_event: bool,
    ) -> str | None:
        """The stratum to keep this frame under, or None.

        Args:
            camera: camera id.
            at: the frame's time (seconds).
            top_prob: the model's highest class probability.
            alert_score: the highest probability among the camera's alert labels.
            threshold: the camera's alert threshold.
            in_event: an alert event is open (its frames are reviewed as the event).
        """
        if not self.cfg.enabled or in_event or alert_score >= threshold:
            return None
        if alert_score >= threshold - self.cfg.near_threshold_margin:
            stratum = "near_threshold"
        elif top_prob < self.cfg.low_confidence:
            stratum = "low_confidence"
        else:
            stratum = "random"
        pop = self.population.setdefault(camera, dict.fromkeys(STRATA, 0))
        pop[stratum] += 1
        if stratum == "random" and self._rng(camera).random() >= self.cfg.random_rate:
            return None
        if not self._within_cap(camera, at):
            return None
        counts = self.sampled.setdefault(camera, dict.fromkeys(STRATA, 0))
        counts[stratum] += 1
        return stratum

    def _rng(self, camera: str) -> random.Random:
        rng = self._rngs.get(camera)
        if rng is None:
            rng = self._fresh if self._seed is None else random.Random(f"{self._seed}:{camera}")
            self._rngs[camera] = rng
        return rng

    def take_counts(self, camera: str) -> dict[str, dict[str, int]]:
        """The population and sample counts since the last call (then reset), for the stats rows."""
        out = {
            "population": self.population.pop(camera, dict.fromkeys(STRATA, 0)),
            "sampled": self.sampled.pop(camera, dict.fromkeys(STRATA, 0)),
        }
        return out

    def _within_cap(self, camera: str, at: float) -> bool:
        kept = self._kept.setdefault(camera, deque())
        while kept and at - kept[0] >= 3600.0:
            kept.popleft()
        if len(kept) >= self.cfg.max_per_hour:
            return False
        kept.append(at)
        return True


def audit_counts_total(rows: list[Mapping[str, Mapping[str, int]]]) -> dict[str, dict[str, int]]:
    """Add up ``take_counts`` results (population and sampled per stratum)."""
    total: dict[str, dict[str, int]] = {
        "population": dict.fromkeys(STRATA, 0),
        "sampled": dict.fromkeys(STRATA, 0),
    }
    for row in rows:
        for part in ("population", "sampled"):
            for stratum, n in row.get(part, {}).items():
                total[part][stratum] = total[part].get(stratum, 0) + int(n)
    return total
