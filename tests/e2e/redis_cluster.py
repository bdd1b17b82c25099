"""A real Redis Cluster on loopback for tests: six of Debian's `redis-server`, formed
by `redis-cli --cluster create … --cluster-replicas 1` into three masters, each
with one replica, as a small production cluster is. A test may kill a master and
let its replica take over.

Each node runs in its own folder under the test's temporary directory, keeps no
data on disk (`--save '' --appendonly no`: a replica holds the copy), and is
stopped when the cluster is."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis
from redis.crc import key_slot

NODE_TIMEOUT_MS = 2000  # how long a silent master takes to be declared failed: small, so a test heals fast
_BUS_OFFSET = 10_000  # each node also listens on its port + 10000 for the other nodes


def cluster_binaries() -> tuple[str, str]:
    """`redis-server` and `redis-cli`, or a failure that says how to install them."""
    server, cli = shutil.which("redis-server"), shutil.which("redis-cli")
    if server is None or cli is None:
        pytest.fail(
            "The Redis Cluster tests need Debian's redis-server and redis-cli on the PATH "
            "(`apt-get install -y redis-server`; .ci/run installs them).",
            pytrace=False,
        )
    return server, cli


def free_cluster_port(taken: set[int]) -> int:
    """A free port whose bus port (port + 10000) is free too, neither among `taken`."""
    while True:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        if port + _BUS_OFFSET > 65_535 or {port, port + _BUS_OFFSET} & taken:
            continue
        with socket.socket() as bus:
            try:
                bus.bind(("127.0.0.1", port + _BUS_OFFSET))
            except OSError:
                continue
        return port


@dataclass
class Node:
    port: int
    process: subprocess.Popen

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port, socket_timeout=2, socket_connect_timeout=2)

    def command(self, *args: str) -> object:
        with self.client() as client:
            return client.execute_command(*args)

    def alive(self) -> bool:
        return self.process.poll() is None

    def kill(self) -> None:
        self.process.kill()
        self.process.wait(10)


class LocalRedisCluster:
    def __init__(self, folder: Path, *, node_timeout_ms: int = NODE_TIMEOUT_MS) -> None:
        self._folder = folder
        self._node_timeout_ms = node_timeout_ms
        self.nodes: list[Node] = []

    @property
    def url(self) -> str:
        """One seed node, as `state.url` names it: the client finds the others."""
        return f"redis://127.0.0.1:{self.nodes[0].port}/0"

    def start(self) -> None:
        server, cli = cluster_binaries()
        taken: set[int] = set()
        for _ in range(6):
            port = free_cluster_port(taken)
            taken |= {port, port + _BUS_OFFSET}
            folder = self._folder / f"node-{port}"
            folder.mkdir(parents=True)
            command = [server, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(folder)]
            command += ["--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf"]
            command += ["--cluster-node-timeout", str(self._node_timeout_ms), "--save", "", "--appendonly", "no"]
            # A master down takes only its own slots offline; the others keep serving. A replica
            # may take over however long its master has been gone (a test may hold the failover).
            command += ["--cluster-require-full-coverage", "no", "--cluster-replica-validity-factor", "0"]
            log = (folder / "redis.log").open("ab")
            self.nodes.append(Node(port, subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)))
        for node in self.nodes:
            until(lambda node=node: _answers(node), timeout_s=15, what=f"redis-server on {node.port}")
        addresses = [f"127.0.0.1:{node.port}" for node in self.nodes]
        create = [cli, "--cluster", "create", *addresses, "--cluster-replicas", "1", "--cluster-yes"]
        output = self._folder / "cluster-create.log"
        with output.open("wb") as log:
            try:
                subprocess.run(create, check=True, stdout=log, stderr=subprocess.STDOUT, timeout=120)
            except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as error:
                raise AssertionError(f"{' '.join(create)} failed ({error}):\n{output.read_text()}") from None
        self.wait_until_healthy()

    def stop(self) -> None:
        for node in self.nodes:
            if node.alive():
                node.kill()

    def wait_until_healthy(self, timeout_s: float = 30) -> None:
        """Until every live node says the cluster is ok, every slot has a live master,
        and each master has a replica in sync."""
        until(self._healthy, timeout_s=timeout_s, what="the cluster to be healthy")

    def master_of(self, key: str) -> Node:
        """The live node that serves `key`'s hash slot."""
        slot = key_slot(key.encode())
        for start, end, master, *_ in self._live().command("CLUSTER", "SLOTS"):
            if start <= slot <= end:
                return self._node(int(master[1]))
        raise AssertionError(f"no master serves slot {slot}")

    def replica_of(self, master: Node) -> Node:
        node_id = master.command("CLUSTER", "MYID").decode()
        replicas = master.command("CLUSTER", "REPLICAS", node_id)
        return self._node(int(replicas[0].decode().split()[1].split(":")[1].split("@")[0]))

    def masters(self) -> list[Node]:
        return [self._node(int(master[1])) for _, _, master, *_ in self._live().command("CLUSTER", "SLOTS")]

    def _node(self, port: int) -> Node:
        return next(node for node in self.nodes if node.port == port)

    def _live(self) -> Node:
        return next(node for node in self.nodes if node.alive())

    def _healthy(self) -> bool:
        try:
            live = [node for node in self.nodes if node.alive()]
            if not all(b"cluster_state:ok" in node.command("CLUSTER", "INFO") for node in live):
                return False
            masters = self.masters()
            if len(masters) != 3 or not all(master.alive() for master in masters):
                return False
            covered = sum(end - start + 1 for start, end, *_ in live[0].command("CLUSTER", "SLOTS"))
            return covered == 16_384 and all(_replica_in_sync(master) for master in masters)
        except redis.RedisError:
            return False


def _answers(node: Node) -> bool:
    if not node.alive():
        raise AssertionError(f"redis-server on {node.port} exited with {node.process.returncode}")
    try:
        return bool(node.command("PING"))
    except redis.RedisError:
        return False


def _replica_in_sync(master: Node) -> bool:
    """The master has a replica online, with every write the master has sent."""
    with master.client() as client:
        info = client.info("replication")
    replica = info.get("slave0") or {}
    return replica.get("state") == "online" and replica.get("offset") == info["master_repl_offset"]


def until(check: Callable[[], bool], *, timeout_s: float, what: str) -> float:
    """Wait for `check`; how long it took."""
    started = time.monotonic()
    while not check():
        if time.monotonic() - started > timeout_s:
            raise AssertionError(f"waited {timeout_s} s for {what}")
        time.sleep(0.1)
    return time.monotonic() - started
