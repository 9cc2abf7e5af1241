"""The ``inference`` thread (``worker.InferenceWorker``): deadline batches across cameras through the classifier."""
