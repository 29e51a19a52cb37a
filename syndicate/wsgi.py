"""WSGI entry point for production servers: ``syndicate.wsgi:app``."""

from syndicate import create_app

app = create_app()
