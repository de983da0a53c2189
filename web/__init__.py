"""The auditors' web app: ``create_app`` with an ``api`` blueprint (JSON under /api/v1, the only
source of data for the pages) and a ``pages`` blueprint."""
from cpaudit.web.app import create_app

__all__ = ["create_app"]
