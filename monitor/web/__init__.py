"""The review pages, JSON API, /metrics and /healthz (``app.create_app``), served from the ``web`` thread (``app.WebServer``)."""
