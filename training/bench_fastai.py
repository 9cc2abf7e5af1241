"""Time the fastai book's way of serving a model: ``learn.predict`` one image at a time.

Run by ``bearwatch bench`` in a subprocess (the monitor never imports torch).
The network is built from the architecture name with random weights: speed
does not depend on the weights, and the edge box has no pickled Learner.

    python -m training.bench_fastai --arch resnet18 --size 128 --labels 3 --images 50
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--arch", required=True)
    ap.add_argument("--size", type=int, required=True)
    ap.add_argument("--labels", type=int, default=3)
    ap.add_argument("--images", type=int, default=50)
    args = ap.parse_args(argv)

    import torchvision.models as tvm
    from fastai.vision.all import (
        CategoryBlock,
        DataBlock,
        ImageBlock,
        RandomSplitter,
        Resize,
        get_image_files,
        parent_label,
        vision_learner,
    )

    arch = getattr(tvm, args.arch, None)
    if arch is None:
        print(f"unknown torchvision architecture {args.arch!r}", file=sys.stderr)
        return 2
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for c in range(args.labels):
            (root / f"c{c}").mkdir()
            for i in range(4):
                img = rng.integers(0, 256, size=(240, 320, 3), dtype=np.uint8)
                Image.fromarray(img).save(root / f"c{c}" / f"{i}.jpg")
        block = DataBlock(
            blocks=(ImageBlock, CategoryBlock),
            get_items=get_image_files,
            get_y=parent_label,
            splitter=RandomSplitter(0.25, seed=0),
            item_tfms=Resize(args.size),
        )
        dls = block.dataloaders(root, bs=4, num_workers=0)
        learn = vision_learner(dls, arch, pretrained=False)
        files = sorted(root.glob("*/*.jpg"))
        with learn.no_bar(), learn.no_logging():
            learn.predict(files[0])
            t0 = time.perf_counter()
            for i in range(args.images):
                learn.predict(files[i % len(files)])
            rate = args.images / (time.perf_counter() - t0)
    print(json.dumps({"arch": args.arch, "size": args.size, "img_s": rate}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
