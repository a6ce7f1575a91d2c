"""Sign-in through OpenID Connect with Streamlit's ``st.login`` / ``st.user``.

Providers are configured in the standard Streamlit ``[auth]`` secrets section (one provider, or
named ones in ``[auth.<name>]``). This module only turns the signed-in user's ID-token claims into
an :class:`huizhi.access.Identity`; there is no other way to obtain one in the portal.
"""

from __future__ import annotations

import json
import logging
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Provider:
    name: str | None  # None: the single default provider (st.login())
    label: str
    metadata_url: str


def configured_providers(auth: Mapping[str, Any], labels: Mapping[str, str] | None = None) -> list[Provider]:
    """Providers from an ``[auth]`` secrets section, in the order they are written.

    Button labels come from huizhi's own ``[signin.labels]`` (``<name> = "…"``, ``default`` for
    the unnamed provider), not from ``[auth]``, whose keys Streamlit hands to the OAuth client.
    """
    labels = labels or {}
    named = [
        Provider(name=key, label=labels.get(key, key), metadata_url=str(value.get("server_metadata_url", "")))
        for key, value in auth.items()
        if isinstance(value, Mapping)
    ]
    if named:
        return named
    if "client_id" in auth:
        return [Provider(None, labels.get("default", "统一身份认证"), str(auth.get("server_metadata_url", "")))]
    return []


def provider_reachable(provider: Provider, timeout: float = 3.0) -> bool:
    """Whether the provider's discovery document answers. Streamlit fetches it on every sign-in
    and answers a bare HTTP 400 when it cannot, so the portal checks first and explains."""
    if not provider.metadata_url:
        return False
    try:
        with urllib.request.urlopen(provider.metadata_url, timeout=timeout) as resp:  # noqa: S310 (configured URL)
            return resp.status == 200 and "authorization_endpoint" in json.loads(resp.read())
    except Exception as exc:
        log.warning("identity provider %s unreachable: %s", provider.metadata_url, exc)
        return False
