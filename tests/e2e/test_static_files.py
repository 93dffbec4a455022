"""Static files are served by the app itself (WhiteNoise) on a real ASGI server (issue 9 §7).

Under `make run` the Swagger UI of ``/v1/docs`` (drf-spectacular-sidecar under ``/static/``) and the admin's
CSS answered 404: nothing served ``/static/``. Both modes are covered: DEBUG (a fresh clone, `make run`),
where the files come from the apps, and production-like (DEBUG=0), where they come from ``collectstatic``'s
hashed, compressed copy."""

import os
import re
import subprocess
import sys

import httpx
import pytest

from tests.fixtures import BASE_DIR

pytestmark = pytest.mark.django_db(transaction=True)

ASSET = re.compile(r"""(?:src|href)=["']([^"']+)["']""")


def docs_assets(base_url: str, page_path: str = "/v1/docs") -> list[str]:
    page = httpx.get(f"{base_url}{page_path}", timeout=10)
    assert page.status_code == 200
    assets = [url for url in ASSET.findall(page.text) if "/static/" in url]
    assert any(url.endswith(".js") for url in assets) and any(url.endswith(".css") for url in assets), assets
    return assets


def test_docs_assets_and_admin_css_are_served_in_development(asgi_server):
    for url in docs_assets(asgi_server.base_url):
        response = httpx.get(httpx.URL(asgi_server.base_url).join(url), timeout=10)
        assert response.status_code == 200, url
        assert len(response.content) > 100, url
    css = httpx.get(f"{asgi_server.base_url}/static/admin/css/base.css", timeout=10)
    assert css.status_code == 200
    assert css.headers["content-type"].startswith("text/css")
    assert "--body-bg" in css.text
    assert httpx.get(f"{asgi_server.base_url}/static/admin/css/no-such.css", timeout=10).status_code == 404
    # Streamed as an asynchronous iterator under ASGI: Django has nothing to warn about.
    assert "must consume synchronous iterators" not in asgi_server.log_path.read_text(errors="replace")


def test_collected_static_files_are_served_hashed_compressed_and_cached_without_debug(
    asgi_server_factory, subprocess_env, tmp_path
):
    """What the Docker image does: collectstatic at build time (DEBUG=0), then the server serves that copy."""
    static_root = tmp_path / "static"
    env = {**subprocess_env, "DEBUG": "0", "NEXA_STATIC_ROOT": str(static_root)}
    collect = subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--noinput", "--verbosity", "0"],
        cwd=BASE_DIR, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert collect.returncode == 0, collect.stderr[-3000:]
    assert (static_root / "staticfiles.json").exists()

    server = asgi_server_factory({"DEBUG": "0", "NEXA_STATIC_ROOT": str(static_root)})
    assets = docs_assets(server.base_url)
    hashed = [url for url in assets if re.search(r"\.[0-9a-f]{12}\.(?:js|css)$", url)]
    assert hashed, f"no hashed asset in {assets}"
    # The console's own CSS/JS and its vendored htmx and socket.io-client (whose source map collectstatic follows).
    console = docs_assets(server.base_url, "/console/sign-in")
    assert all(re.search(r"\.[0-9a-f]{12}\.(?:js|css)$", url) for url in console), console
    for url in assets + console:
        response = httpx.get(httpx.URL(server.base_url).join(url), headers={"Accept-Encoding": "gzip"}, timeout=10)
        assert response.status_code == 200, url
    bundle = next(url for url in hashed if url.endswith(".js"))
    response = httpx.get(httpx.URL(server.base_url).join(bundle), headers={"Accept-Encoding": "gzip"}, timeout=10)
    assert response.headers["content-encoding"] == "gzip"
    assert "immutable" in response.headers["cache-control"]
    original = static_root / bundle.split("/static/", 1)[1]
    assert response.content == original.read_bytes()  # httpx decoded it
    assert 0 < response.num_bytes_downloaded < os.path.getsize(original) / 2  # sent compressed
    ranged = httpx.get(
        httpx.URL(server.base_url).join(bundle), headers={"Range": "bytes=0-99", "Accept-Encoding": "identity"}
    )
    assert ranged.status_code == 206 and ranged.content == original.read_bytes()[:100]
    assert "must consume synchronous iterators" not in server.log_path.read_text(errors="replace")
