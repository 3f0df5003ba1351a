"""pytest fixtures around the loopback Hub. Register them once in your top-level conftest.py:

    pytest_plugins = ["hfmodels.testing.fixtures"]

and a test that names `loopback_hub` as a parameter gets a fresh Hub; `client_env`, `TEST_TOKEN` and `TEST_USER` are
plain values to import.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from .hub import LoopbackHub

TEST_TOKEN = "hf_loopback_token"
TEST_USER = "tester"


def client_env(hub: LoopbackHub, hf_home: Path, token: str | None = TEST_TOKEN) -> dict[str, str]:
    """The environment of a subprocess whose huggingface_hub talks to `hub`, with an empty cache in `hf_home`."""
    env = {key: value for key, value in os.environ.items()
           if key not in ("HUGGINGFACE_CO_STAGING", "HF_OIDC_RESOURCE", "HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE",
                          "HF_TOKEN", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")}
    env.update({"HF_ENDPOINT": hub.endpoint, "HF_HOME": str(hf_home), "HF_HUB_OFFLINE": "0",
                "HF_HUB_DISABLE_TELEMETRY": "1", "HF_HUB_DISABLE_XET": "1"})
    if token is not None:
        env["HF_TOKEN"] = token
    return env


def loopback_only_client_factory(hub: LoopbackHub):
    """huggingface_hub's own HTTP client, refusing every request that is not for `hub`: a test that forgot to
    point somewhere gets an error instead of reaching the internet."""
    from huggingface_hub.utils._http import default_client_factory

    address = urlsplit(hub.endpoint)

    def refuse_other_hosts(request) -> None:
        if (request.url.host, request.url.port) != (address.hostname, address.port):
            raise ConnectionRefusedError(f"the loopback Hub test refused a request to {request.url}")

    def factory():
        client = default_client_factory()
        client.event_hooks["request"].insert(0, refuse_other_hosts)
        return client

    return factory


@pytest.fixture
def loopback_hub(tmp_path_factory, monkeypatch) -> Iterator[LoopbackHub]:
    """A fresh loopback Hub that accepts `TEST_TOKEN` (user `TEST_USER`) and answers uploads as the Hub does (LFS
    for model weights, pictures, data shards and large files: `upload_modes="hub"`). huggingface_hub in this process
    talks to it and to nothing else: its import-time endpoint, offline and Xet flags are patched (this Hub has no
    Xet storage; subprocesses get HF_HUB_DISABLE_XET too), its HTTP client refuses other hosts, and no token is found
    unless a test sets HF_TOKEN."""
    from huggingface_hub import constants
    from huggingface_hub.utils import set_client_factory
    from huggingface_hub.utils._http import default_client_factory

    with LoopbackHub({TEST_TOKEN: TEST_USER}, upload_modes="hub") as hub:
        monkeypatch.setattr(constants, "HF_HUB_DISABLE_XET", True)
        # transformers keeps one HfApi for the process, whose endpoint is the first it saw (an earlier Hub's)
        from transformers.utils import hub as transformers_hub

        if hasattr(transformers_hub, "_hf_api"):
            monkeypatch.setattr(transformers_hub, "_hf_api", None)
        monkeypatch.setenv("HF_HUB_DISABLE_XET", "1")
        monkeypatch.setattr(constants, "ENDPOINT", hub.endpoint)
        monkeypatch.setattr(constants, "HUGGINGFACE_CO_URL_TEMPLATE",
                            hub.endpoint + "/{repo_id}/resolve/{revision}/{filename}")
        monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
        monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(tmp_path_factory.mktemp("hf_home") / "token"))
        monkeypatch.delenv("HF_TOKEN", raising=False)
        set_client_factory(loopback_only_client_factory(hub))
        try:
            yield hub
        finally:
            set_client_factory(default_client_factory)
