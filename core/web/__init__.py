"""The web app: webhooks, the operator's dashboard, /metrics, /healthz and /readyz."""

from core.web.app import create_app

__all__ = ["create_app"]
