"""The daemon: the composition root (``pipeline.Pipeline``), the supervisor of every thread, the lifecycle (``daemon.run_daemon``) and sd_notify."""
