"""Provider discovery from Streamlit's [auth] secrets, and the reachability check."""

from __future__ import annotations

from huizhi.signin import Provider, configured_providers, provider_reachable


def test_single_default_provider_with_label_from_huizhi_config():
    auth = {"redirect_uri": "x", "cookie_secret": "y", "client_id": "c", "server_metadata_url": "http://idp/.well-known"}
    assert configured_providers(auth) == [Provider(None, "统一身份认证", "http://idp/.well-known")]
    assert configured_providers(auth, {"default": "政务云认证"})[0].label == "政务云认证"


def test_named_providers_in_written_order():
    auth = {"redirect_uri": "x", "keycloak": {"client_id": "a", "server_metadata_url": "k"}, "entra": {"client_id": "b"}}
    providers = configured_providers(auth, {"keycloak": "政务云统一身份认证"})
    assert [(p.name, p.label) for p in providers] == [("keycloak", "政务云统一身份认证"), ("entra", "entra")]


def test_no_provider_configured():
    assert configured_providers({}) == []


def test_unreachable_provider_is_reported_not_raised():
    # port 9 on loopback: nothing listens there
    assert provider_reachable(Provider(None, "x", "http://127.0.0.1:9/.well-known/openid-configuration"), timeout=1) is False
    assert provider_reachable(Provider(None, "x", "")) is False
