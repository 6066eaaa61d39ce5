"""The one place that keeps the test suite on loopback.

Every program a test starts (a browser, Ray's processes, clients of remote
stores, Hugging Face libraries) gets its settings from here, through the
fixtures of ``tests/conftest.py``, so that a new test that starts one gets
them without thinking. docs/reliability.md ("The test suite is hermetic")
says why each setting is needed; ``tests/test_hermetic.py`` checks the whole
under strace.

This module imports nothing outside the standard library: the guard test runs
it in a child process under strace.
"""

from __future__ import annotations

import ipaddress
import os
import re
from pathlib import Path
from typing import Iterable, Iterator

# Ray rewrites 127.0.0.1 and localhost to the machine's network address and
# then talks over that; any other loopback address is taken as given. Node k
# of a test cluster listens on 127.0.0.(2 + k).
RAY_NODE_ADDRESSES = tuple(f"127.0.0.{k}" for k in range(2, 10))

# Chromium resolves Google hosts at start whatever --disable-* flags say;
# the resolver rule answers every name but localhost with "not found" before
# any lookup leaves the process.
CHROMIUM_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE localhost",
)

# Ray's dashboard asks cloud metadata endpoints which provider it runs on at
# every start, unless $HOME/ray_bootstrap_config.yaml names one; usage stats
# would otherwise be sent home. Remote-store clients look up credentials on
# metadata endpoints when none are given; Hugging Face libraries ask the Hub.
_STATIC_ENVIRON = {
    "RAY_USAGE_STATS_ENABLED": "0",
    "AWS_EC2_METADATA_DISABLED": "true",
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "GOOGLE_CLOUD_PROJECT": "testing",
    "NO_GCE_CHECK": "true",
    "HF_HUB_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "DO_NOT_TRACK": "1",
}


def make_home(root: Path) -> Path:
    """A fresh home folder under ``root`` that tells Ray it runs on a local provider.

    >>> import tempfile
    >>> home = make_home(Path(tempfile.mkdtemp()))
    >>> "type: local" in (home / "ray_bootstrap_config.yaml").read_text()
    True
    """
    home = root / "home"
    home.mkdir(parents=True, exist_ok=True)
    (home / "ray_bootstrap_config.yaml").write_text("provider:\n  type: local\n")
    return home


def environ(home: Path) -> dict[str, str]:
    """The variables every process a test starts runs with (``home`` from :func:`make_home`)."""
    return {**_STATIC_ENVIRON, "HOME": str(home), "XDG_CONFIG_HOME": str(home / ".config"),
            "XDG_CACHE_HOME": str(home / ".cache")}


def apply(home: Path) -> None:
    """Put :func:`environ` into this process's environment, so children inherit it."""
    os.environ.update(environ(home))


def ray_init_kwargs(num_cpus: int = 2) -> dict:
    """Arguments for ``ray.init`` that start a one-node instance on a loopback address."""
    return {"num_cpus": num_cpus, "include_dashboard": False, "log_to_driver": False,
            "_node_ip_address": RAY_NODE_ADDRESSES[0]}


def chromium_command(binary: str, profile: Path, *args: str) -> list[str]:
    """A headless Chromium command line that resolves no name and keeps its profile in ``profile``."""
    return [binary, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args]


# ------------------------------------------------------------ the strace guard

# A UDP connect sends nothing: programs use one to 8.8.8.8:53 (or Google's
# IPv6 resolver) to ask the kernel which address a route would leave from.
# Only a packet sent on such a socket would reach past loopback.
_ROUTE_PROBES = {(ipaddress.ip_address("8.8.8.8"), 53), (ipaddress.ip_address("2001:4860:4860::8888"), None)}

_CALL = re.compile(r"^(?P<pid>\d+)\s+(?:<\.\.\. )?(?P<call>connect|sendto|sendmsg|sendmmsg|close)\((?P<fd>\d+)?(?P<rest>.*)$")
_INET4 = re.compile(r'sa_family=AF_INET, sin_port=htons\((?P<port>\d+)\), sin_addr=inet_addr\("(?P<addr>[^"]+)"\)')
_INET6 = re.compile(r'sa_family=AF_INET6, sin6_port=htons\((?P<port>\d+)\).*?inet_pton\(AF_INET6, "(?P<addr>[^"]+)"')


def _addresses(text: str) -> Iterator[tuple[ipaddress._BaseAddress, int]]:
    for pattern in (_INET4, _INET6):
        for match in pattern.finditer(text):
            yield ipaddress.ip_address(match["addr"]), int(match["port"])


def _is_loopback(address: ipaddress._BaseAddress) -> bool:
    mapped = getattr(address, "ipv4_mapped", None)
    return (mapped or address).is_loopback


def _is_route_probe(address: ipaddress._BaseAddress, port: int) -> bool:
    return (address, port) in _ROUTE_PROBES or (address, None) in _ROUTE_PROBES


def off_loopback(trace_lines: Iterable[str]) -> list[str]:
    """The lines of an ``strace -f -e trace=connect,sendto,sendmsg,sendmmsg,close``
    log that reach, or try to reach, past loopback.

    A connect or a send to an address outside 127.0.0.0/8 and ::1 counts,
    whether or not it succeeded; so does any DNS query (port 53), since a
    lookup through a loopback resolver still leaves the machine. A UDP
    connect to a route-probe address counts only once data is sent on it.

    >>> off_loopback([
    ...     '7 connect(3, {sa_family=AF_INET, sin_port=htons(80), sin_addr=inet_addr("127.0.0.2")}, 16) = 0',
    ...     '7 connect(4, {sa_family=AF_INET, sin_port=htons(53), sin_addr=inet_addr("8.8.8.8")}, 16) = 0',
    ...     '7 close(4) = 0',
    ...     '7 connect(5, {sa_family=AF_INET, sin_port=htons(443), sin_addr=inet_addr("10.1.2.3")}, 16) = -1'])
    ['7 connect(5, {sa_family=AF_INET, sin_port=htons(443), sin_addr=inet_addr("10.1.2.3")}, 16) = -1']
    """
    probes: set[tuple[str, str]] = set()  # (pid, fd) of sockets connected to a route probe
    found = []
    for line in trace_lines:
        match = _CALL.match(line.strip())
        if not match or match["fd"] is None:
            continue
        socket = (match["pid"], match["fd"])
        if match["call"] == "close":
            probes.discard(socket)
            continue
        addresses = list(_addresses(match["rest"]))
        if match["call"] == "connect":
            probes.discard(socket)
            if addresses and _is_route_probe(*addresses[0]):
                probes.add(socket)
                continue
        elif socket in probes and not addresses:
            found.append(line.strip())
            continue
        if any(not _is_loopback(address) or port == 53 for address, port in addresses):
            found.append(line.strip())
    return found
