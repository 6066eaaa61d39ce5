"""Ray Data on a real cluster: a head and a second node, each started by
``ray start`` as a process of its own on its own loopback address, a driver
process connected by address, a corpus read through fsspec; the kept set
equals that of ``cotsieve filter`` on the same file.

The driver is a child process (``DRIVER``), not pytest's: Ray Data keeps
state of an earlier instance in its process past ``ray.shutdown``, and the
actors of a cluster test that ran after the one-node tests died at start.

Every process of the cluster is watched while it runs: no connection may
reach past loopback. Ray rewrites 127.0.0.1 and localhost to the machine's
network address, so the nodes get 127.0.0.2 and 127.0.0.3 (tests/hermetic.py).

The cluster is stopped by the test, whatever the outcome, within a bounded
time. Not by ``ray stop --force``: that kills every Ray process on the
machine by name, those of other runs too. Each ``ray start --block`` runs in
a process group of its own with the processes it starts; the teardown ends
those groups, then any process left that names the cluster's own temporary
folder.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from pathlib import Path

import pytest

import hermetic

pytest.importorskip("ray.data")
psutil = pytest.importorskip("psutil")
pytest.importorskip("fsspec")
pytest.importorskip("cotsieve.integrations.ray")

from cotsieve.testing import generate_traces  # noqa: E402

pytestmark = pytest.mark.slow

HEAD, SECOND = hermetic.RAY_NODE_ADDRESSES[:2]
RULES = ["drop-top 10% branch_step_ratio per source", "repetition < 0.5"]
START_SECONDS = 120  # each node, then both seen by the driver
DRIVER_SECONDS = 300  # the driver, start to end
STOP_SECONDS = 20  # SIGTERM, then SIGKILL

# The driver: connect, wait for both nodes, filter the corpus read through an
# fsspec file system, write the nodes it saw and the kept rows as JSON.
DRIVER = textwrap.dedent("""
    import json, sys, time
    import fsspec, ray
    from cotsieve.integrations.ray import filter_dataset

    address, corpus, rules, out, wait = sys.argv[1], sys.argv[2], json.loads(sys.argv[3]), sys.argv[4], sys.argv[5]
    ray.init(address=address, _node_ip_address=address.split(":")[0], log_to_driver=False)
    ray.data.DataContext.get_current().enable_progress_bars = False
    deadline = time.monotonic() + float(wait)
    while sum(node["Alive"] for node in ray.nodes()) < 2 and time.monotonic() < deadline:
        time.sleep(0.5)
    nodes = sorted(node["NodeManagerAddress"] for node in ray.nodes() if node["Alive"])
    ds = ray.data.read_json(corpus, filesystem=fsspec.filesystem("file"))
    result = filter_dataset(ds, rules, id_column="id", compute=ray.data.ActorPoolStrategy(size=2), num_cpus=0.5)
    with open(out, "w") as f:
        json.dump({"nodes": nodes, "kept": result.kept.take_all()}, f)
    ray.shutdown()
""")


def free_port(address: str) -> int:
    with socket.socket() as probe:
        probe.bind((address, 0))
        return int(probe.getsockname()[1])


def wait_for(what: str, ready, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not ready():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not ready after {seconds} s")
        time.sleep(0.5)


def can_connect(address: str, port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((address, port), timeout=1):
        return True
    return False


class LocalCluster:
    """A Ray head and a second node on loopback addresses, and their driver,
    with a fresh HOME (``ray_bootstrap_config.yaml`` naming a local provider)
    and a temporary folder of their own. Each process it starts leads a
    process group of its own, where what it starts stays."""

    def __init__(self, root: Path):
        self.root = root
        # Without the RAY_* variables an earlier ray.init of this process left (RAY_AUTH_MODE=token).
        inherited = {key: value for key, value in os.environ.items() if not key.startswith("RAY_")}
        self.env = {**inherited, **hermetic.environ(hermetic.make_home(root))}
        if self.env.get("PYTHONPATH"):  # the workers run in other folders: a relative entry must still hold
            self.env["PYTHONPATH"] = os.pathsep.join(map(os.path.abspath, self.env["PYTHONPATH"].split(os.pathsep)))
        self.port = free_port(HEAD)
        self.starts: list[subprocess.Popen] = []  # the ray start processes
        self.drivers: list[subprocess.Popen] = []
        self.ray = str(Path(sys.executable).with_name("ray"))

    @property
    def address(self) -> str:
        return f"{HEAD}:{self.port}"

    def start(self) -> None:
        self.start_node("head", "--head", f"--node-ip-address={HEAD}", f"--port={self.port}",
                        "--include-dashboard=false", f"--temp-dir={self.root / 'ray'}")
        wait_for("the head node", lambda: self.alive() and can_connect(HEAD, self.port), START_SECONDS)
        self.start_node("second", f"--address={self.address}", f"--node-ip-address={SECOND}")

    def start_node(self, name: str, *args: str) -> None:
        command = [self.ray, "start", "--block", "--num-cpus=2", "--disable-usage-stats", *args]
        self.starts.append(self.launch(name, command))

    def drive(self, *args: str) -> subprocess.Popen:
        """Start ``DRIVER`` with ``args``, connected to this cluster."""
        self.drivers.append(self.launch("driver", [sys.executable, "-c", DRIVER, self.address, *args]))
        return self.drivers[-1]

    def launch(self, name: str, command: list[str]) -> subprocess.Popen:
        with open(self.root / f"{name}.log", "wb") as log:
            return subprocess.Popen(command, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                    start_new_session=True)

    def alive(self) -> bool:
        """Whether every ``ray start`` still runs; raises if one has exited (a failed start)."""
        exited = [start.returncode for start in self.starts if start.poll() is not None]
        if exited:
            raise RuntimeError(f"ray start exited with status {exited}:\n{self.logs()}")
        return True

    def logs(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-3000:]}" for p in self.root.glob("*.log"))

    def processes(self) -> list:
        """Every live process of the cluster: the two process groups, and any
        process whose command line names the cluster's temporary folder."""
        groups = {started.pid for started in self.starts + self.drivers}
        found = []
        for process in psutil.process_iter(["cmdline"]):
            with contextlib.suppress(psutil.Error, OSError):
                if os.getpgid(process.pid) in groups or str(self.root) in " ".join(process.info["cmdline"] or ()):
                    found.append(process)
        return found

    def stop(self) -> None:
        """End every process of the cluster: SIGTERM, SIGKILL to those left after ``STOP_SECONDS``."""
        for sig, wait in ((signal.SIGTERM, STOP_SECONDS), (signal.SIGKILL, 5)):
            for started in self.drivers + self.starts:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(started.pid, sig)
            for process in self.processes():
                with contextlib.suppress(psutil.Error):
                    process.send_signal(sig)
            for started in self.drivers + self.starts:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    started.wait(timeout=wait)
            psutil.wait_procs(self.processes(), timeout=wait)
            if not self.processes():
                return


def off_loopback(connection) -> list[str]:
    """The ends of a socket past loopback: its peer, or its own address when it
    has a peer or listens on one interface. Ray's gRPC servers listen on every
    interface (``::``) and Ray 2.60 has no setting against it: such a listener
    reaches nothing by itself, and what connects to it shows as a peer."""
    ends = [("peer", connection.raddr), ("local", connection.laddr)]
    return [f"{side} {end.ip}:{end.port}" for side, end in ends
            if end and not _loopback(end.ip) and not (side == "local" and _wildcard(end.ip) and not connection.raddr)]


def _address(ip: str) -> ipaddress._BaseAddress:
    address = ipaddress.ip_address(ip.split("%")[0])
    return getattr(address, "ipv4_mapped", None) or address


def _loopback(ip: str) -> bool:
    return _address(ip).is_loopback


def _wildcard(ip: str) -> bool:
    return _address(ip).is_unspecified


class ConnectionWatch(threading.Thread):
    """Look at the sockets of the cluster's processes, its driver's too, every half second; keep what leaves loopback."""

    def __init__(self, cluster: LocalCluster):
        super().__init__(daemon=True)
        self.cluster = cluster
        self.found: set[str] = set()
        self.peers: set[str] = set()  # what the cluster talked to: both nodes, if the watch sees it
        self.looks = 0
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            self.look()
            self.done.wait(0.5)

    def look(self) -> None:
        for process in self.cluster.processes():
            with contextlib.suppress(psutil.Error):
                for connection in process.net_connections(kind="inet"):
                    self.found.update(f"{process.name()} ({process.pid}): {end}" for end in off_loopback(connection))
                    if connection.raddr:
                        self.peers.add(str(_address(connection.raddr.ip)))
        self.looks += 1


@pytest.fixture(scope="module")
def two_nodes():
    """A running two-node cluster; stopped, its drivers too, after the module's tests, whatever their outcome."""
    # Short: Ray puts Unix sockets under it, whose paths may not pass 107 bytes.
    root = Path(tempfile.mkdtemp(prefix="cs-ray-"))
    cluster = LocalCluster(root)
    try:
        cluster.start()
        yield cluster
    finally:
        print(cluster.logs())  # shown when a test of the module fails
        cluster.stop()
        left = cluster.processes()
        shutil.rmtree(root, ignore_errors=True)
        assert not left, f"cluster processes still running: {left}"


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """One JSONL file, and what ``python -m cotsieve.cli filter`` keeps of it."""
    folder = tmp_path_factory.mktemp("cluster")
    path = folder / "traces.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in generate_traces(300, seed=21)))
    command = [sys.executable, "-m", "cotsieve.cli", "filter", str(path), "--out", str(folder / "cli"),
               "--field", "id", "--tie-key", "id", "--quiet", *[a for rule in RULES for a in ("--rule", rule)]]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    kept = [json.loads(line) for line in (folder / "cli" / "kept.jsonl").read_text().splitlines()]
    return path, kept


def test_a_two_node_cluster_keeps_what_the_cli_keeps_over_loopback_alone(two_nodes, corpus, tmp_path):
    path, cli_kept = corpus
    out = tmp_path / "driven.json"
    watch = ConnectionWatch(two_nodes)
    watch.start()
    try:
        driver = two_nodes.drive(path.as_uri(), json.dumps(RULES), str(out), str(START_SECONDS))
        driver.wait(timeout=DRIVER_SECONDS)
        watch.look()  # once more, as the driver ends
    finally:
        watch.done.set()
        watch.join(timeout=30)
    assert driver.returncode == 0, two_nodes.logs()
    driven = json.loads(out.read_text())
    assert driven["nodes"] == [HEAD, SECOND]
    assert sorted(json.dumps(r, sort_keys=True) for r in driven["kept"]) == \
        sorted(json.dumps(r, sort_keys=True) for r in cli_kept)
    assert 0 < len(cli_kept) < 300
    assert watch.looks >= 2 and {HEAD, SECOND} <= watch.peers, watch.peers
    assert not watch.found, sorted(watch.found)
