"""nginx in front of Tollgate replicas on loopback, from the config `deploy/` ships:
deploy/nginx.conf with its upstream servers pointed at the replicas' ports, its
`listen` at a free one, and what a process of our own needs (a pid file, logs and
temporary files in its folder, `daemon off`). Everything else, the retry rules
above all, is the shipped file's. Its access log names the replicas each request
was sent to (`$upstream_addr`: two when nginx moved it on to the next one)."""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

SHIPPED = Path(__file__).resolve().parents[2] / "deploy" / "nginx.conf"
_SERVERS = re.compile(r"^(\s*)server tollgate-\w+:\d+( [^;]*)?;\n", re.MULTILINE)
_LISTEN = re.compile(r"^(\s*)listen \d+;", re.MULTILINE)
# One line per request: the status nginx answered, and each replica it tried, with its status.
_LOG_FORMAT = '\'$status "$upstream_addr" "$upstream_status"\''
_LINE = re.compile(r'^(\d+) "([^"]*)" "([^"]*)"$')


def render(ports: list[int], listen_port: int, folder: Path, shipped: str | None = None) -> str:
    """deploy/nginx.conf for replicas on loopback `ports`, listening on `listen_port`."""
    text = SHIPPED.read_text() if shipped is None else shipped
    servers = _SERVERS.findall(text)
    if not servers or not _LISTEN.search(text):
        raise ValueError(f"{SHIPPED} no longer has `server tollgate-…:PORT …;` lines and one `listen PORT;`")
    indent, options = servers[0]
    ours = "".join(f"{indent}server 127.0.0.1:{port}{options};\n" for port in ports)
    text = _SERVERS.sub("", text, count=len(servers) - 1)
    text = _SERVERS.sub(lambda _: ours, text, count=1)
    text = _LISTEN.sub(lambda match: f"{match[1]}listen 127.0.0.1:{listen_port};", text, count=1)
    own = f"daemon off;\npid {folder}/nginx.pid;\nerror_log {folder}/error.log warn;\n"
    paths = "".join(f"    {kind}_temp_path {folder}/{kind}_temp;\n" for kind in ("client_body", "proxy", "fastcgi"))
    paths += "".join(f"    {kind}_temp_path {folder}/{kind}_temp;\n" for kind in ("uwsgi", "scgi"))
    logging = f"    log_format tries {_LOG_FORMAT};\n    access_log {folder}/access.log tries;\n"
    return own + text.replace("http {\n", "http {\n" + paths + logging, 1)


@dataclass(frozen=True, slots=True)
class Request:
    """One line of the access log."""

    status: int
    replicas: list[str]  # host:port of each replica tried, in order
    replica_statuses: list[str]  # each one's status, or "502" where nginx got no answer


class LoadBalancer:
    def __init__(self, folder: Path, ports: list[int], listen_port: int) -> None:
        self.folder = folder
        self.port = listen_port
        self.url = f"http://127.0.0.1:{listen_port}"
        folder.mkdir(parents=True, exist_ok=True)
        self.config = folder / "nginx.conf"
        self.config.write_text(render(ports, listen_port, folder))
        self._process: subprocess.Popen | None = None

    def start(self, timeout_s: float = 15) -> None:
        nginx = shutil.which("nginx") or "/usr/sbin/nginx"
        if not Path(nginx).exists():
            raise RuntimeError("nginx is missing: install Debian's nginx package (`apt-get install -y nginx`)")
        command = [nginx, "-p", str(self.folder), "-c", str(self.config)]
        log = (self.folder / "nginx.out").open("ab")
        self._process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout_s
        while not _accepts(self.port):
            if self._process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"nginx did not start:\n{(self.folder / 'error.log').read_text(errors='replace')}")
            time.sleep(0.05)

    @property
    def session(self) -> int | None:
        """nginx's session id (its master's pid): its workers are in it too."""
        return None if self._process is None else self._process.pid

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()  # nginx's fast shutdown; its workers follow their master
            try:
                self._process.wait(10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()

    def requests(self) -> list[Request]:
        """The access log so far (nginx writes each line as its request ends)."""
        path = self.folder / "access.log"
        found = []
        for line in path.read_text().splitlines() if path.exists() else []:
            status, replicas, statuses = _LINE.match(line).groups()
            found.append(Request(int(status), _listed(replicas), _listed(statuses)))
        return found


def _listed(value: str) -> list[str]:
    """nginx's list of tries ("a, b"; "-" for none)."""
    return [] if value in ("", "-") else [item.strip() for item in value.split(",")]


def _accepts(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0
