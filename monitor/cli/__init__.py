"""The ``bearwatch`` command (``main.main``) and its sub-commands: runtime, review, report."""
