"""Studies that run bearwatch's loop end to end on generated data with known truth (``bearwatch study``)."""
