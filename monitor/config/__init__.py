"""The YAML configuration: strict pydantic models, env-var secrets, errors that name the key path.

``camera`` holds a camera's models, ``service`` everything else and the whole
``Config``, ``load`` reads a file (env substitution, path resolution, one line
per problem). Import from here.
"""

from monitor.config.base import HOURS, SLUG, is_loopback, redact_url, source_kind
from monitor.config.camera import (
    CameraConfig,
    DecisionConfig,
    DriftConfig,
    MotionGateConfig,
    ReconnectConfig,
)
from monitor.config.load import config_warnings, load_config, parse_config
from monitor.config.service import (
    AuditConfig,
    AuthConfig,
    BatchingConfig,
    CandidateConfig,
    Config,
    ModelConfig,
    MqttConfig,
    NightConfig,
    NotificationsConfig,
    OodConfig,
    PromotionConfig,
    RepeatsConfig,
    RetentionConfig,
    StoreConfig,
    SupervisorConfig,
    TokenConfig,
    UserConfig,
    WebConfig,
    WebhookConfig,
)
from monitor.errors import ConfigError

__all__ = [
    "HOURS",
    "SLUG",
    "AuditConfig",
    "AuthConfig",
    "BatchingConfig",
    "CameraConfig",
    "CandidateConfig",
    "Config",
    "ConfigError",
    "DecisionConfig",
    "DriftConfig",
    "ModelConfig",
    "MotionGateConfig",
    "MqttConfig",
    "NightConfig",
    "NotificationsConfig",
    "OodConfig",
    "RepeatsConfig",
    "PromotionConfig",
    "ReconnectConfig",
    "RetentionConfig",
    "StoreConfig",
    "SupervisorConfig",
    "TokenConfig",
    "UserConfig",
    "WebConfig",
    "WebhookConfig",
    "config_warnings",
    "is_loopback",
    "load_config",
    "parse_config",
    "redact_url",
    "source_kind",
]
