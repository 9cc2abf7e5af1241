"""Pure per-camera logic — no OpenCV, threads, clock reads or store: decision policy, drift, audit sampling, candidate agreement, camera statistics, active hours."""
