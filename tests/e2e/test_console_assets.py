"""The console's browser libraries are served by the app (no CDN): the committed copies in its static files are
exactly what package-lock.json pins in node_modules (``make console-assets`` copies them; ``make test`` runs
``npm ci`` first). Bumping htmx or socket.io-client without copying fails here."""

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
VENDOR = ROOT / "nexa" / "console" / "static" / "console" / "vendor"


@pytest.mark.parametrize(
    ("vendored", "source"),
    [
        ("htmx.min.js", "node_modules/htmx.org/dist/htmx.min.js"),
        ("socket.io.min.js", "node_modules/socket.io-client/dist/socket.io.min.js"),
        # Its last line names the map, and collectstatic's manifest storage fails on a missing one.
        ("socket.io.min.js.map", "node_modules/socket.io-client/dist/socket.io.min.js.map"),
    ],
)
def test_vendored_copy_is_the_pinned_package(vendored, source):
    pinned = ROOT / source
    if not pinned.exists():
        pytest.fail(f"{source} is missing: run `make node_modules` (npm ci from package-lock.json)")
    assert (VENDOR / vendored).read_bytes() == pinned.read_bytes(), "run `make console-assets`"


def test_templates_load_no_script_or_style_from_another_origin():
    templates = ROOT / "nexa" / "templates" / "console"
    for template in templates.glob("*.html"):
        text = template.read_text(encoding="utf-8")
        assert "https://" not in text and "http://" not in text and "//cdn" not in text, template.name
