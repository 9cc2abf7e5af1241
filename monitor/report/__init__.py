"""Reports (``build``, ``html``), their statistics and periods, and the reviewed-frames dataset export."""
