"""The storage root: keys, atomic writes, listing, and refusing escapes."""

from __future__ import annotations

import pytest

from anograph.errors import InputError
from anograph.io.storage import Storage, with_endpoint


def test_roundtrip_and_listing(tmp_path):
    storage = Storage(tmp_path / "root")
    storage.write_bytes("shards/a/one.parquet", b"1")
    storage.write_bytes("shards/b/two.parquet", b"22")
    assert storage.read_bytes("shards/b/two.parquet") == b"22"
    assert storage.exists("shards/a/one.parquet")
    assert not storage.exists("shards/a/missing.parquet")
    assert storage.list("shards") == ["shards/a/one.parquet", "shards/b/two.parquet"]
    assert storage.list("nothing-here") == []


def test_overwrite_is_atomic_and_leaves_no_temporary_files(tmp_path):
    storage = Storage(tmp_path)
    storage.write_bytes("k/x.bin", b"old")
    storage.write_bytes("k/x.bin", b"new")
    assert storage.read_bytes("k/x.bin") == b"new"
    assert sorted(p.name for p in (tmp_path / "k").iterdir()) == ["x.bin"]


def test_file_uri_root(tmp_path):
    storage = Storage(f"file://{tmp_path}/via-uri")
    storage.write_bytes("a.txt", b"hello")
    assert (tmp_path / "via-uri" / "a.txt").read_bytes() == b"hello"


@pytest.mark.parametrize("key", ["../outside", "a/../../outside", "/etc/passwd", "", ".", "a\\b"])
def test_keys_that_escape_the_root_are_refused(tmp_path, key):
    storage = Storage(tmp_path / "root")
    with pytest.raises(InputError):
        storage.write_bytes(key, b"x")
    assert not (tmp_path / "outside").exists()


def test_reading_a_missing_key_names_it(tmp_path):
    storage = Storage(tmp_path)
    with pytest.raises(InputError, match="missing.parquet"):
        storage.read_bytes("missing.parquet")


# --- S3: a real SeaweedFS server started by the tests (tests/s3_server.py) ---------------------------


def test_s3_roundtrip_listing_and_overwrite(s3_root, s3_server):
    storage = Storage(s3_root)
    assert storage.is_object_store and storage.uri.startswith(f"s3://{s3_server.bucket}/")
    storage.write_bytes("shards/a/one.parquet", b"1")
    storage.write_bytes("shards/b/two.parquet", b"22")
    storage.write_bytes("shards/b/two.parquet", b"333")
    assert storage.read_bytes("shards/b/two.parquet") == b"333"
    assert storage.exists("shards/a/one.parquet") and not storage.exists("shards/a/missing.parquet")
    assert storage.list("shards") == ["shards/a/one.parquet", "shards/b/two.parquet"]
    assert storage.open_input("shards/b/two.parquet").size() == 3
    # The objects really are on the server, under the prefix, with no temporary left behind.
    prefix = storage.base.split("/", 1)[1]
    listed = s3_server.client().list_objects_v2(Bucket=s3_server.bucket, Prefix=prefix)["Contents"]
    keys = {item["Key"] for item in listed if not item["Key"].endswith("/")}
    assert keys == {f"{prefix}/shards/a/one.parquet", f"{prefix}/shards/b/two.parquet"}
    # A second Storage on the same root (another task, another process) sees the same objects.
    assert Storage(s3_root).read_bytes("shards/a/one.parquet") == b"1"


def test_s3_temporaries_are_never_listed(s3_root, s3_server):
    storage = Storage(s3_root)
    storage.write_bytes("shards/done.parquet", b"complete")
    # What a crash between upload and rename leaves behind.
    s3_server.client().put_object(Bucket=s3_server.bucket, Key=f"{storage.base.split('/', 1)[1]}/shards/"
                                  "next.parquet.tmp-0123abcd", Body=b"partial")
    assert storage.list("shards") == ["shards/done.parquet"]
    assert not storage.exists("shards/next.parquet")


@pytest.mark.parametrize("key", ["../outside", "a/../../outside", "/etc/passwd", "", ".", "a\\b"])
def test_s3_keys_that_escape_the_root_are_refused(s3_root, s3_server, key):
    storage = Storage(s3_root)
    with pytest.raises(InputError):
        storage.write_bytes(key, b"x")
    listed = s3_server.client().list_objects_v2(Bucket=s3_server.bucket).get("Contents", [])
    assert not any(item["Key"].endswith("outside") for item in listed)


def test_s3_endpoint_from_the_standard_environment_variable(s3_server, s3_root, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_server.endpoint)
    bare = s3_root.split("?", 1)[0]
    Storage(bare).write_bytes("x.bin", b"via env")
    assert Storage(s3_root).read_bytes("x.bin") == b"via env"


def test_s3_wrong_secret_is_refused_by_the_server_and_never_shown(s3_root, monkeypatch):
    wrong = "not-the-secret-" + "x" * 20
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", wrong)
    with pytest.raises(InputError) as caught:
        Storage(s3_root).write_bytes("x.bin", b"x")
    assert wrong not in str(caught.value)


@pytest.mark.parametrize("root, message", [
    ("s3://AKIA:supersecret@bucket/prefix", "must not carry credentials"),
    ("s3:///prefix", "needs a bucket"),
    ("s3://bucket/a/../b", "plain path"),
    ("s3://bucket/p?secret_key=supersecret", "unknown S3 option"),
    ("s3://bucket/p?endpoint_override=ftp://host", "http"),
])
def test_bad_s3_roots_are_refused_without_echoing_secrets(root, message, monkeypatch):
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    with pytest.raises(InputError, match=message) as caught:
        Storage(root)
    assert "supersecret" not in str(caught.value)


def test_with_endpoint_puts_the_endpoint_in_the_root():
    assert with_endpoint("s3://b/p", "http://127.0.0.1:9000") == "s3://b/p?endpoint_override=http://127.0.0.1:9000"
    assert with_endpoint("s3://b/p", None) == "s3://b/p"
    with pytest.raises(InputError):
        with_endpoint("/local/path", "http://127.0.0.1:9000")


def test_a_reading_root_that_does_not_exist_is_refused_and_not_created(tmp_path):
    typo = tmp_path / "typo-store"
    with pytest.raises(InputError, match="storage root does not exist") as caught:
        Storage(typo, create=False)
    assert str(typo) in str(caught.value)
    assert not typo.exists()
    with pytest.raises(InputError, match="does not exist"):
        Storage.open_existing(f"file://{typo}")
    (tmp_path / "a-file").write_text("x")
    with pytest.raises(InputError, match="not a folder"):
        Storage.open_existing(tmp_path / "a-file")
    Storage(tmp_path / "real").write_bytes("k.bin", b"1")
    assert Storage.open_existing(tmp_path / "real").read_bytes("k.bin") == b"1"


def test_symbolic_links_out_of_the_root_are_refused(tmp_path):
    root, outside = tmp_path / "root", tmp_path / "outside"
    outside.mkdir()
    (outside / "hostname").write_text("secret host")
    storage = Storage(root)
    (root / "file-link").symlink_to(outside / "hostname")
    (root / "folder-link").symlink_to(outside, target_is_directory=True)
    for key in ("file-link", "folder-link/hostname"):
        with pytest.raises(InputError, match="symbolic link") as caught:
            storage.read_bytes(key)
        assert "secret host" not in str(caught.value)
    with pytest.raises(InputError, match="symbolic link"):
        storage.write_bytes("folder-link/planted.bin", b"x")
    assert not (outside / "planted.bin").exists()
    assert storage.list() == []
    # A link that stays inside the root is an ordinary key.
    storage.write_bytes("data/a.bin", b"inside")
    (root / "alias").symlink_to(root / "data", target_is_directory=True)
    assert storage.read_bytes("alias/a.bin") == b"inside"


@pytest.mark.parametrize("endpoint", ["http://AKIAKEY:supersecret@127.0.0.1:8333", "AKIAKEY:supersecret@127.0.0.1"])
def test_an_endpoint_with_credentials_is_refused_without_echoing_them(endpoint, monkeypatch):
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    with pytest.raises(InputError, match="must not carry credentials") as caught:
        with_endpoint("s3://bucket/p", endpoint)
    assert "supersecret" not in str(caught.value) and "AKIAKEY" not in str(caught.value)
    with pytest.raises(InputError, match="must not carry credentials") as caught:
        Storage(f"s3://bucket/p?endpoint_override={endpoint}")
    assert "supersecret" not in str(caught.value) and "AKIAKEY" not in str(caught.value)
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    with pytest.raises(InputError, match="must not carry credentials") as caught:
        Storage("s3://bucket/p")
    assert "supersecret" not in str(caught.value)


def test_s3_endpoint_with_credentials_is_refused_before_connecting(s3_server, s3_root):
    """The real server would accept the connection; the credentials in the URL never reach it."""
    host = s3_server.endpoint.split("://", 1)[1]
    bare = s3_root.split("?", 1)[0]
    with pytest.raises(InputError, match="must not carry credentials") as caught:
        Storage(with_endpoint(bare, f"http://AKIAKEY:supersecret@{host}"))
    assert "supersecret" not in str(caught.value)
    assert Storage(with_endpoint(bare, s3_server.endpoint)).list() == []
