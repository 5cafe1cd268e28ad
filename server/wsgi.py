"""WSGI entry point for production servers (any WSGI server: server.wsgi:application)."""

from server.app import create_app
from server.config import load_settings

application = create_app(load_settings())
