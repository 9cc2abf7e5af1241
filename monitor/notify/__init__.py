"""The ``notify`` thread (``service.NotificationService``) and its channels: MQTT and signed webhooks, gated by rollout mode."""
