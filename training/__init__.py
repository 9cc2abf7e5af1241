"""bearwatch training: fastai data → learner → interpretation → safe ONNX export (needs the `train` extra)."""
