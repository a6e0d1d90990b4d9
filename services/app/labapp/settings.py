"""Every knob of the app, read once from the environment (declared in labsettings.py).

Each ``fix_*`` flag is a fix the baseline applies; a scenario's ``app.env`` switches one off
to bring its bug back (docs/SETTINGS.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import labsettings


@dataclass(frozen=True)
class LabSettings:
    upload_dir: Path
    max_upload_mb: int
    max_header_kib: int
    max_form_memory_mb: int
    fix_proxy: bool
    fix_drain_body: bool
    fix_upgrade_input: bool
    fix_json_errors: bool
    fix_form_memory: bool
    ws_route_flag: bool
    fix_ws_upgrade: bool
    x_accel: bool
    ws_max_message_bytes: int
    fix_broker: bool
    broker_url: str
    self_url: str
    self_ca: Path

    @property
    def max_upload_bytes(self) -> int:
        return self.max_upload_mb * 1024 * 1024

    @classmethod
    def from_env(cls) -> LabSettings:
        """Each field from its declaration in labsettings (name, default and why live there)."""
        return cls(
            upload_dir=labsettings.UPLOAD_DIR.value(),
            max_upload_mb=labsettings.MAX_UPLOAD_MB.value(),
            max_header_kib=labsettings.MAX_HEADER_KIB.value(),
            max_form_memory_mb=labsettings.MAX_FORM_MEMORY_MB.value(),
            fix_proxy=labsettings.FIX_PROXY.value(),
            fix_drain_body=labsettings.FIX_DRAIN_BODY.value(),
            fix_upgrade_input=labsettings.FIX_UPGRADE_INPUT.value(),
            fix_json_errors=labsettings.FIX_JSON_ERRORS.value(),
            fix_form_memory=labsettings.FIX_FORM_MEMORY.value(),
            ws_route_flag=labsettings.WS_ROUTE_FLAG.value(),
            fix_ws_upgrade=labsettings.FIX_WS_UPGRADE.value(),
            x_accel=labsettings.X_ACCEL.value(),
            ws_max_message_bytes=labsettings.WS_MAX_MESSAGE.value(),
            fix_broker=labsettings.FIX_BROKER.value(),
            broker_url=labsettings.BROKER_URL.value(),
            self_url=(
                labsettings.SELF_URL.value() or f"https://localhost:{labsettings.HTTPS_PORT.value()}"
            ).rstrip("/"),
            self_ca=labsettings.SELF_CA.value(),
        )

    def public(self) -> dict[str, object]:
        """What `/debug/settings` shows: everything but filesystem paths and the broker's address."""
        return {
            "max_upload_mb": self.max_upload_mb,
            "max_header_kib": self.max_header_kib,
            "max_form_memory_mb": self.max_form_memory_mb if self.fix_form_memory else None,
            "fix_proxy": self.fix_proxy,
            "fix_drain_body": self.fix_drain_body,
            "fix_upgrade_input": self.fix_upgrade_input,
            "fix_json_errors": self.fix_json_errors,
            "fix_form_memory": self.fix_form_memory,
            "ws_route_flag": self.ws_route_flag,
            "fix_ws_upgrade": self.fix_ws_upgrade,
            "x_accel": self.x_accel,
            "ws_max_message_bytes": self.ws_max_message_bytes,
            "fix_broker": self.fix_broker,
        }
