"""The model artifact contract: metadata, preprocessing, image statistics and reference distributions, the ONNX Runtime classifier (``onnx.OnnxClassifier``)."""
