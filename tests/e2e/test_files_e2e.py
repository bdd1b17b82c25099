"""Generated images kept on disk: the row gains their URLs, and the URLs serve the
image to the key that made it and to the admin, to nobody else."""

from __future__ import annotations

import base64
import time

import httpx

from .configs import ConfigFile, key, routed
from .harness import free_port


def config(simulator_url: str, files_dir: str) -> ConfigFile:
    return (
        routed(simulator_url)
        .with_server(admin_key="sk-admin-files")
        .changed(
            files={"dir": files_dir, "url_base": "${PUBLIC_URL}"},
            keys=[key("maker", "sk-maker", "growth"), key("other", "sk-other", "data")],
        )
    )


def test_images_are_stored_and_served_only_to_their_owner_and_the_admin(simulator, start_proxy, tmp_path):
    port = free_port()
    proxy = start_proxy(
        config(simulator.url, str(tmp_path / "files")), port=port, env={"PUBLIC_URL": f"http://127.0.0.1:{port}"}
    )
    raw = proxy.client(api_key="sk-maker").images.with_raw_response.generate(
        model="gpt-image-2", prompt="a lighthouse", quality="low", n=2, output_format="webp"
    )
    images = [base64.b64decode(item.b64_json) for item in raw.parse().data]
    request_id = raw.headers["x-request-id"]

    admin = {"authorization": "Bearer sk-admin-files"}
    deadline = time.monotonic() + 10
    while True:
        row = httpx.get(f"{proxy.url}/admin/requests/{request_id}", headers=admin)
        if row.status_code == 200 and row.json()["file_urls"]:
            break
        assert time.monotonic() < deadline, "the row gains its file URLs"
        time.sleep(0.1)
    urls = row.json()["file_urls"]
    assert urls == [f"{proxy.url}/files/{request_id}-0.webp", f"{proxy.url}/files/{request_id}-1.webp"]

    assert [httpx.get(url, headers={"authorization": "Bearer sk-maker"}).content for url in urls] == images
    assert httpx.get(urls[0], headers=admin).content == images[0]
    assert httpx.get(urls[0], headers={"authorization": "Bearer sk-other"}).status_code == 403
    assert httpx.get(urls[0]).status_code == 401
    assert httpx.get(f"{proxy.url}/files/..%2Fconfig.yaml", headers=admin).status_code == 404
    assert sorted(path.name for path in (tmp_path / "files").iterdir()) == [
        f"{request_id}-0.webp",
        f"{request_id}-1.webp",
    ]
