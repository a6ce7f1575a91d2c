"""nginx in front of several portal processes, for the tests: render the one template, run it.

``render(listen, backends, affinity=True)`` fills ``deploy/nginx/huizhi.conf.in``;
``deploy/nginx/huizhi.conf`` is the same template rendered with :data:`DOCUMENTED` (run this
file to refresh it; ``test_documented_config_is_the_template`` fails while it is stale).
``running(state_dir, listen_port, backends, affinity=...)`` runs Debian's ``/usr/sbin/nginx`` in
the foreground on 127.0.0.1 with its own prefix (pid file, logs and temp files in ``state_dir``),
never the system service, and stops it on exit.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import subprocess
import time
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from huizhi import demo

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "deploy" / "nginx" / "huizhi.conf.in"
DOCUMENTED_FILE = ROOT / "deploy" / "nginx" / "huizhi.conf"
COMPOSE_FILE = ROOT / "deploy" / "compose" / "nginx.conf"
_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback, never a proxy
NGINX = os.environ.get("HUIZHI_NGINX", shutil.which("nginx") or "/usr/sbin/nginx")

STICKY = "hash $huizhi_route consistent;"
ROUND_ROBIN = "# no balancing directive: round robin, no affinity (only to show streamlit#4173)"

# the example the documented file is rendered with: two portals on one machine, nginx on :80
DOCUMENTED = {
    "listen": "80",
    "server_name": "huizhi.daxing.example",
    "backends": ("127.0.0.1:8501", "127.0.0.1:8502"),
}


def render(
    listen: str,
    backends: Sequence[str],
    *,
    affinity: bool = True,
    server_name: str = "_",
    upstream: str = "huizhi_portals",
) -> str:
    """The template with these values; ``affinity=False`` drops the hash (round robin)."""
    text = TEMPLATE.read_text(encoding="utf-8")
    values = {
        "{{listen}}": listen,
        "{{server_name}}": server_name,
        "{{upstream}}": upstream,
        "{{balance}}": STICKY if affinity else ROUND_ROBIN,
        "{{servers}}": "\n".join(f"    server {b};" for b in backends),
    }
    for key, value in values.items():
        text = text.replace(key, value)
    assert "{{" not in text, f"unfilled placeholder in {TEMPLATE}"
    return text


# the compose file's nginx: the two replicas by their service names (deploy/compose/compose.yaml)
COMPOSE = {"listen": "80", "server_name": "_", "backends": ("portal-1:8501", "portal-2:8501")}


def documented() -> str:
    return render(DOCUMENTED["listen"], DOCUMENTED["backends"], server_name=DOCUMENTED["server_name"])


def compose() -> str:
    """``deploy/compose/nginx.conf``: the template for the compose file's services."""
    return render(COMPOSE["listen"], COMPOSE["backends"], server_name=COMPOSE["server_name"])


def _main_conf(state: Path, site: Path) -> str:
    """nginx.conf around the site config: foreground, one worker, everything under ``state``."""
    lines = [
        "daemon off;",
        "worker_processes 1;",
        f"pid {state / 'nginx.pid'};",
        f"error_log {state / 'error.log'} notice;",
    ]
    if os.geteuid() == 0:
        # workers would run as nobody and could not write temp files into a 0700 tmp dir
        lines.append("user root root;")
    temp = "\n".join(
        f"    {kind}_temp_path {state / 'temp' / kind};"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    return "\n".join(lines) + (
        "\nevents { worker_connections 512; }\n"
        "http {\n"
        # the upstream first and the affinity key last: tests/browser/test_two_portals.py reads them
        "    log_format huizhi '$upstream_addr $status \"$request\" route=$huizhi_route';\n"
        f"    access_log {state / 'access.log'} huizhi;\n"
        f"{temp}\n"
        f"    include {site};\n"
        "}\n"
    )


@dataclass
class Nginx:
    port: int
    process: subprocess.Popen[bytes]
    log_file: Path
    access_log: Path
    config: Path

    backends: tuple[str, ...] = ()

    @property
    def url(self) -> str:
        return f"http://{demo.LOOPBACK}:{self.port}"

    def upstream_of(self, route: str, attempts: int = 3) -> set[str]:
        """Where requests carrying ``huizhi_route=<route>`` go now: sends ``attempts`` requests
        with that cookie and reads the upstreams nginx logged for them."""
        mark = f"probe-{secrets.token_hex(4)}"
        for _ in range(attempts):
            request = urllib.request.Request(
                f"{self.url}/_stcore/health?{mark}", headers={"Cookie": f"huizhi_route={route}"}
            )
            with _DIRECT.open(request, timeout=10) as response:
                response.read()
        lines = [line for line in self.access_log.read_text(encoding="utf-8").splitlines() if mark in line]
        return {line.split()[0] for line in lines}

    def route_to(self, backend: str) -> str:
        """An affinity key that this proxy's consistent hash maps to ``backend`` (host:port)."""
        for n in range(200):
            if self.upstream_of(f"pin{n}", attempts=1) == {backend}:
                return f"pin{n}"
        raise AssertionError(f"no key among 200 maps to {backend}")

    def reconfigure(self, *, affinity: bool, timeout: float = 10.0) -> None:
        """Re-render the site config with or without affinity and reload nginx (SIGHUP): same
        port, so the same origin, and the browser's identity cookie stays valid."""
        self.config.write_text(
            render(f"{demo.LOOPBACK}:{self.port}", self.backends, affinity=affinity), encoding="utf-8"
        )
        self.process.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + timeout
        while True:  # new workers answer with the new balancing: one fixed key, one or two upstreams
            spread = len(self.upstream_of("reload-probe", attempts=4))
            if (spread == 1) == affinity:
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"nginx did not reload to affinity={affinity} in {timeout:.0f} s")
            time.sleep(0.2)

    def as_portal(self) -> demo.Portal:
        """The proxy where the harness expects a portal (``sign_in(page, sub, portal, oidc)``)."""
        return demo.Portal(port=self.port, process=self.process, log_file=self.log_file, startup_seconds=0.0)


@contextlib.contextmanager
def running(
    state: Path, port: int, backends: Sequence[str], *, affinity: bool = True, timeout: float = 20.0
) -> Iterator[Nginx]:
    """Run nginx on 127.0.0.1:``port`` in front of ``backends`` until the block ends; ready when
    ``/_stcore/health`` answers through it."""
    if not Path(NGINX).exists():
        raise demo.StartupError(f"{NGINX} not found: run ./dev setup --system (installs Debian's nginx)")
    state.mkdir(parents=True, exist_ok=True)
    for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (state / "temp" / kind).mkdir(parents=True, exist_ok=True)
    site = state / "huizhi.conf"
    site.write_text(render(f"{demo.LOOPBACK}:{port}", backends, affinity=affinity), encoding="utf-8")
    conf = state / "nginx.conf"
    conf.write_text(_main_conf(state, site), encoding="utf-8")
    log_file = state / "error.log"
    check = subprocess.run(
        [NGINX, "-t", "-q", "-p", str(state), "-c", str(conf), "-e", str(log_file)],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    if check.returncode != 0:
        raise demo.StartupError(f"nginx -t refused {conf}:\n{check.stderr}")
    cmd = [NGINX, "-p", str(state), "-c", str(conf), "-e", str(log_file)]
    with demo._child("nginx", cmd, env=None, cwd=state, log_file=state / "stderr.log") as process:
        demo._wait_ready(
            "nginx", f"http://{demo.LOOPBACK}:{port}/_stcore/health", process, log_file, timeout, ok=b"ok"
        )
        yield Nginx(
            port=port, process=process, log_file=log_file, access_log=state / "access.log", config=site,
            backends=tuple(backends),
        )  # fmt: skip


if __name__ == "__main__":  # refresh deploy/nginx/huizhi.conf and deploy/compose/nginx.conf from the template
    for target, text in ((DOCUMENTED_FILE, documented()), (COMPOSE_FILE, compose())):
        target.write_text(text, encoding="utf-8")
        print(f"wrote {target}")
