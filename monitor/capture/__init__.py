"""Camera capture: sources (``sources.open_source``), one ``worker.CaptureWorker`` thread per camera, the frame slot (``hub.FrameHub``) and the motion gate."""
