"""HTML from the Jinja2 templates in server/admin/templates (autoescaped), and QR codes as inline SVG.

Layer: server.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import segno
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from markupsafe import Markup


def when(value: datetime | None) -> str:
    """A time as the pages show it: "2026-05-04 09:30 UTC", or "never"."""
    return "never" if value is None else f"{value:%Y-%m-%d %H:%M} UTC"


def qr_svg(url: str) -> Markup:
    """``url`` as a QR code, an inline SVG element (no script, no external image)."""
    svg = segno.make(url, error="m").svg_inline(scale=5, border=2, title="Profile download")
    return Markup(svg)  # noqa: S704 - segno's own markup around a URL it encoded


class Templates:
    """The admin page's templates."""

    def __init__(self) -> None:
        self._environment = Environment(
            loader=PackageLoader("server.admin", "templates"),
            autoescape=select_autoescape(default=True, default_for_string=True),
            undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True,
        )
        self._environment.filters["when"] = when

    def render(self, name: str, **context: Any) -> bytes:
        """The page ``name`` with ``context`` (``request`` and ``session`` are expected by the layout)."""
        return self._environment.get_template(name).render(**context).encode("utf-8")
