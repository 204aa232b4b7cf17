import os
import stat

import pytest

from lib.config import ServerConfig
from lib.db import make_engine, migrate, session_factory
from lib.models import StoredServer
from lib.secretbox import SecretBox, SecretBoxError, load_or_create_key
from lib.servers import ServerRegistry, ServerRegistryError


@pytest.fixture
def registry(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
    migrate(engine)
    env = ServerConfig("default", "ws://127.0.0.1:7880", "devkey", "x" * 40, "environment")
    yield ServerRegistry(session_factory(engine), SecretBox("k" * 40), env), engine
    engine.dispose()


def test_added_server_secret_is_encrypted_at_rest(registry):
    reg, engine = registry
    reg.add("edge-eu", "wss://eu.example", "key", "very-secret-value-123")
    with session_factory(engine)() as session:
        row = session.query(StoredServer).one()
    assert b"very-secret-value-123" not in row.api_secret_encrypted
    assert reg.get("edge-eu").api_secret == "very-secret-value-123"


def test_environment_server_cannot_be_edited_or_shadowed(registry):
    reg, _ = registry
    with pytest.raises(ServerRegistryError, match="environment"):
        reg.add("default", "ws://x", "k", "s")
    with pytest.raises(ServerRegistryError, match="environment"):
        reg.remove("default")


def test_duplicate_and_invalid_servers_are_refused(registry):
    reg, _ = registry
    reg.add("a", "ws://a", "k", "s")
    with pytest.raises(ServerRegistryError, match="already exists"):
        reg.add("a", "ws://b", "k", "s")
    with pytest.raises(ServerRegistryError, match="starts with"):
        reg.add("b", "ftp://b", "k", "s")
    with pytest.raises(ServerRegistryError, match="server name"):
        reg.add("<script>", "ws://b", "k", "s")


def test_update_without_secret_keeps_it_and_remove_forgets(registry):
    reg, _ = registry
    reg.add("a", "ws://a", "k", "first-secret")
    reg.update("a", url="ws://a2", api_key="k2")
    assert (reg.get("a").url, reg.get("a").api_secret) == ("ws://a2", "first-secret")
    reg.remove("a")
    assert [s.name for s in reg.list()] == ["default"]


def test_key_file_is_created_once_with_owner_only_permissions(tmp_path):
    path = tmp_path / "secret.key"
    first = load_or_create_key(path)
    assert load_or_create_key(path) == first
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


def test_a_different_key_cannot_decrypt():
    token = SecretBox("one" * 20).encrypt("s")
    with pytest.raises(SecretBoxError):
        SecretBox("two" * 20).decrypt(token)


def test_the_same_server_under_a_second_name_is_refused_naming_the_first(registry):
    reg, _ = registry
    reg.add("edge", "wss://edge.example.com", "edgekey", "s")
    for spelling in ("wss://EDGE.example.com/", "https://edge.example.com:443", "wss://edge.example.com:443"):
        with pytest.raises(ServerRegistryError, match="already watched as 'edge'"):
            reg.add("edge-again", spelling, "edgekey", "s")
    with pytest.raises(ServerRegistryError, match="already watched as 'default'"):
        reg.add("local", "http://127.0.0.1:7880", "devkey", "s")
    with pytest.raises(ServerRegistryError, match="already watched as 'default'"):
        reg.add("local", "ws://localhost:7880", "devkey", "s")  # another name of the same address
    with pytest.raises(ServerRegistryError, match="already watched as 'default'"):
        reg.update("edge", url="ws://127.0.0.1:7880", api_key="devkey")
    reg.add("edge-other-key", "wss://edge.example.com", "otherkey", "s")  # another project on it
    reg.add("edge-other-port", "wss://edge.example.com:8443", "edgekey", "s")
    reg.update("edge", url="wss://edge.example.com/", api_key="edgekey")  # itself is no duplicate
    assert [s.name for s in reg.list()] == ["default", "edge", "edge-other-key", "edge-other-port"]


def test_every_change_raises_the_version_other_processes_poll(registry):
    reg, _ = registry
    seen = [reg.version()]
    reg.add("a", "ws://a", "k", "s")
    seen.append(reg.version())
    reg.update("a", url="ws://a2", api_key="k")
    seen.append(reg.version())
    reg.remove("a")
    seen.append(reg.version())
    assert seen == sorted(set(seen)) and len(seen) == 4
