"""The Redis client of the state store, one per process: a single server
(`state.url`), or a Redis Cluster found from one seed node (`state.cluster: true`;
the client asks it for the others and for which master serves which slot).

Either way a command that cannot be served fails fast, so a request waits at most
a few seconds before it is refused: one retry on a fresh connection (a pooled one
is dead after Redis restarts) or, on a cluster, with the slot map asked again (a
master failed over), then an error. While a master is down and its replica not
yet promoted, only the keys of its slots fail; the cluster's other masters serve.
"""

from __future__ import annotations

import asyncio
import logging

from redis.asyncio import BlockingConnectionPool, Redis, RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisClusterException, RedisError

log = logging.getLogger("tollgate")

# What a store's commands raise when the store cannot serve them now.
STORE_ERRORS = (RedisError, RedisClusterException)
CONNECTIONS = 100  # per process, to a single server, and to each node of a cluster
WAIT_S = 2  # for a reply, a connection to open, or a pooled one to be free

StoreClient = Redis | RedisCluster


def connect(url: str, *, cluster: bool) -> StoreClient:
    """Connections open on first use, in the process that serves."""
    if cluster:
        return RedisCluster.from_url(
            url,
            socket_timeout=2,
            socket_connect_timeout=1,
            retry=Retry(NoBackoff(), 1),
            # Serve the slots whose masters are up while another fails over.
            require_full_coverage=False,
        )
    # redis-py's default pool refuses a command at once when its 100 connections are busy,
    # which a replica at 64 concurrent requests reaches (their reservations, rate limits and
    # settles); this one makes the command wait for a free connection, as long as a reply may take.
    pool = BlockingConnectionPool.from_url(
        url,
        max_connections=CONNECTIONS,
        timeout=WAIT_S,
        socket_timeout=WAIT_S,
        socket_connect_timeout=WAIT_S,
        retry=Retry(NoBackoff(), 1, supported_errors=(RedisConnectionError,)),
    )
    return Redis.from_pool(pool)


class StoreBusy(RedisError):
    """No turn came free within WAIT_S (`Turns`)."""


class Turns:
    """One client's commands in flight at once: at most CONNECTIONS, the rest waiting up to
    WAIT_S for a turn, as the single server's pool makes them wait for a connection.
    redis-py's cluster client would instead refuse a command at once while CONNECTIONS
    are busy on its node (MaxConnectionsError), which a burst reaches on one node: a
    team's counters all live on one, as does a conversation's binding. So on a cluster
    each command, or pipeline, runs `async with turns:`; on a single server that costs
    nothing."""

    def __init__(self, *, cluster: bool) -> None:
        self._free = asyncio.Semaphore(CONNECTIONS) if cluster else None

    async def __aenter__(self) -> None:
        if self._free is None:
            return
        try:
            async with asyncio.timeout(WAIT_S):
                await self._free.acquire()
        except TimeoutError:
            raise StoreBusy(f"no connection to it came free within {WAIT_S} s") from None

    async def __aexit__(self, *exc_info: object) -> None:
        if self._free is not None:
            self._free.release()


def store_failure(error: Exception) -> str:
    """What a store error says in the 503: why no turn came (StoreBusy), else the error's kind."""
    return str(error) if isinstance(error, StoreBusy) else type(error).__name__


def client_failure(error: Exception) -> str:
    """For an error outside redis-py's own: its cluster client can fail from within
    (dropping every connection after a run of MOVED replies, as in a failover, breaks
    commands in flight). The request gets a 503 like any store failure, not a 500;
    the traceback is logged, as the client is at fault."""
    log.error("the Redis client failed unexpectedly", exc_info=error)
    return type(error).__name__


async def ready(client: StoreClient) -> StoreClient:
    """The client, with a cluster's slot map loaded. redis-py routes a command sent
    before its first map by no key at all (to any node, which answers MOVED), and
    a burst of MOVED makes it drop every connection, the busy ones too; so the map
    is loaded first. Once loaded this costs nothing."""
    if isinstance(client, RedisCluster):
        await client.initialize()
    return client


async def check_serving(client: StoreClient) -> None:
    """Raise unless the store can serve. A cluster can while any master answers and
    calls the cluster ok: a master that is down makes only its own slots fail, and
    refusing every request for it (all replicas unready at once) would turn a
    partial outage into a whole one."""
    if isinstance(client, Redis):
        await client.ping()
        return
    await ready(client)
    answers = await asyncio.gather(
        *(client.execute_command("CLUSTER INFO", target_nodes=node) for node in client.get_primaries()),
        return_exceptions=True,
    )
    states = [answer for answer in answers if not isinstance(answer, BaseException)]
    if not states:
        raise next(answer for answer in answers if isinstance(answer, BaseException))
    if not any(_cluster_ok(state) for state in states):
        raise RedisClusterException("cluster_state:fail")


def _cluster_ok(state: object) -> bool:
    if isinstance(state, dict):  # redis-py parses CLUSTER INFO into a dict
        return str(state.get("cluster_state")) == "ok"
    text = state.decode() if isinstance(state, bytes) else str(state)
    return "cluster_state:ok" in text
