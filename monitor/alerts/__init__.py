"""The ``alerts`` thread (``stage.AlertStage``): decisions → store → taps (``taps``) and event observers."""
