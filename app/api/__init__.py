"""The REST API: ``create_app(runtime) -> FastAPI``; ``KeyStore`` manages API keys."""

from app.api.auth import KeyStore, Principal
from app.api.factory import create_app

__all__ = ["KeyStore", "Principal", "create_app"]
