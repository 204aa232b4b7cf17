"""Where the dashboard's own log lines go: its loggers (`lib.*` and `dashboard`) write INFO and
above to standard error, beside Streamlit's and uvicorn's. Without this, Python keeps only
warnings and drops the INFO lines an operator reads (migrations, servers followed, outages)."""

from __future__ import annotations

import logging
import sys

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
OURS = ("lib", "dashboard", "scheduler")


def configure(level: int = logging.INFO) -> None:
    """Idempotent: a second call (Streamlit re-imports nothing, tests may call it) adds nothing."""
    for name in OURS:
        logger = logging.getLogger(name)
        logger.setLevel(level)
        if not any(getattr(h, "_dashboard", False) for h in logger.handlers):
            handler = logging.StreamHandler(sys.stderr)
            handler.setFormatter(logging.Formatter(FORMAT))
            handler._dashboard = True  # type: ignore[attr-defined]
            logger.addHandler(handler)
