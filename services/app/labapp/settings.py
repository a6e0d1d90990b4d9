"""Every knob of the app, read once from the environment.

Each ``fix_*`` flag is a fix the baseline applies; a scenario's ``app.env`` switches one off
to bring its bug back (see README, "App settings").
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


def env_flag(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    return raw.strip().lower() in {"1", "true", "yes", "on"}


def env_int(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    return int(raw) if raw else default


@dataclass(frozen=True)
class LabSettings:
    upload_dir: Path
    max_upload_mb: int
    max_form_memory_mb: int
    fix_proxy: bool
    fix_drain_body: bool
    fix_json_errors: bool
    fix_form_memory: bool
    ws_route_flag: bool
    x_accel: bool
    # gevent-websocket reads any frame length it is told into memory: this caps one message.
    ws_max_message_bytes: int = 16 * 1024 * 1024

    @property
    def max_upload_bytes(self) -> int:
        return self.max_upload_mb * 1024 * 1024

    @classmethod
    def from_env(cls) -> LabSettings:
        return cls(
            upload_dir=Path(os.environ.get("LAB_UPLOAD_DIR", "/srv/uploads")),
            max_upload_mb=env_int("LAB_MAX_UPLOAD_MB", 4096),
            max_form_memory_mb=env_int("LAB_MAX_FORM_MEMORY_MB", 16),
            fix_proxy=env_flag("LAB_FIX_PROXY", True),
            fix_drain_body=env_flag("LAB_FIX_DRAIN_BODY", True),
            fix_json_errors=env_flag("LAB_FIX_JSON_ERRORS", True),
            fix_form_memory=env_flag("LAB_FIX_FORM_MEMORY", True),
            ws_route_flag=env_flag("LAB_WS_ROUTE_FLAG", True),
            x_accel=env_flag("LAB_X_ACCEL", True),
            ws_max_message_bytes=env_int("LAB_WS_MAX_MESSAGE", 16 * 1024 * 1024),
        )

    def public(self) -> dict[str, object]:
        """What `/debug/settings` shows: everything but filesystem paths."""
        return {
            "max_upload_mb": self.max_upload_mb,
            "max_form_memory_mb": self.max_form_memory_mb if self.fix_form_memory else None,
            "fix_proxy": self.fix_proxy,
            "fix_drain_body": self.fix_drain_body,
            "fix_json_errors": self.fix_json_errors,
            "fix_form_memory": self.fix_form_memory,
            "ws_route_flag": self.ws_route_flag,
            "x_accel": self.x_accel,
            "ws_max_message_bytes": self.ws_max_message_bytes,
        }
