"""Tools on top of the pipeline: ``replay`` of recorded footage and ``bench``."""
