"""The seeded synthetic campsite scene generator (see ``scenes``), usable without the train extra."""

from training.synthetic.scenes import (
    LABELS,
    Clip,
    camera_backdrop,
    camera_name,
    main,
    render_scene,
    render_scene_rgb,
    walk_through,
    write_dataset,
)

__all__ = [
    "LABELS",
    "Clip",
    "camera_backdrop",
    "camera_name",
    "main",
    "render_scene",
    "render_scene_rgb",
    "walk_through",
    "write_dataset",
]
