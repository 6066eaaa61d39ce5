"""Ray Data on a real cluster: a head and a second node, each started by
``ray start`` as a process of its own on its own loopback address, the
driver connected by address, a corpus read through fsspec; the kept set
equals that of ``cotsieve filter`` on the same file.

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
import threading
import time
from pathlib import Path

import pytest

import hermetic

ray = pytest.importorskip("ray")
pytest.importorskip("ray.data")
psutil = pytest.importorskip("psutil")
fsspec = pytest.importorskip("fsspec")
cray = pytest.importorskip("cotsieve.integrations.ray")

from cotsieve.testing import generate_traces  # noqa: E402

pytestmark = pytest.mark.slow

HEAD, SECOND = hermetic.RAY_NODE_ADDRESSES[:2]
RULES = ["drop-top 10% branch_step_ratio per source", "repetition < 0.5"]
START_SECONDS = 120  # each node, then the driver's connection
TEST_SECONDS = 300  # the filter and the CLI, once the cluster runs
STOP_SECONDS = 20  # SIGTERM, then SIGKILL


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


@contextlib.contextmanager
def time_limit(seconds: int):
    """Raise ``TimeoutError`` in the test if its body runs past ``seconds``."""
    def expire(signum, frame):
        raise TimeoutError(f"the cluster test ran past {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


class LocalCluster:
    """A Ray head and a second node on loopback addresses, with a fresh HOME
    (``ray_bootstrap_config.yaml`` naming a local provider) and a temporary
    folder of their own."""

    def __init__(self, root: Path):
        self.root = root
        self.env = {**os.environ, **hermetic.environ(hermetic.make_home(root))}
        if self.env.get("PYTHONPATH"):  # the workers run in other folders: a relative entry must still hold
            self.env["PYTHONPATH"] = os.pathsep.join(map(os.path.abspath, self.env["PYTHONPATH"].split(os.pathsep)))
        self.port = free_port(HEAD)
        self.starts: list[subprocess.Popen] = []
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
        log = open(self.root / f"{name}.log", "wb")
        self.starts.append(subprocess.Popen(
            [self.ray, "start", "--block", "--num-cpus=2", "--disable-usage-stats", *args], env=self.env,
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True))
        log.close()

    def alive(self) -> bool:
        return all(start.poll() is None for start in self.starts)

    def logs(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-3000:]}" for p in self.root.glob("*.log"))

    def processes(self) -> list:
        """Every live process of the cluster: the two process groups, and any
        process whose command line names the cluster's temporary folder."""
        groups = {start.pid for start in self.starts}
        found = []
        for process in psutil.process_iter(["cmdline"]):
            with contextlib.suppress(psutil.Error, OSError):
                if os.getpgid(process.pid) in groups or str(self.root) in " ".join(process.info["cmdline"] or ()):
                    found.append(process)
        return found

    def stop(self) -> None:
        """End every process of the cluster: SIGTERM, SIGKILL to those left after ``STOP_SECONDS``."""
        for sig, wait in ((signal.SIGTERM, STOP_SECONDS), (signal.SIGKILL, 5)):
            for start in self.starts:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(start.pid, sig)
            for process in self.processes():
                with contextlib.suppress(psutil.Error):
                    process.send_signal(sig)
            for start in self.starts:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    start.wait(timeout=wait)
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
    """Look at the sockets of the cluster's processes and the driver every half second, and keep what leaves loopback."""

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
        for process in [*self.cluster.processes(), psutil.Process()]:
            with contextlib.suppress(psutil.Error):
                for connection in process.net_connections(kind="inet"):
                    self.found.update(f"{process.name()} ({process.pid}): {end}" for end in off_loopback(connection))
                    if connection.raddr:
                        self.peers.add(str(_address(connection.raddr.ip)))
        self.looks += 1


@pytest.fixture(scope="module")
def two_nodes():
    """A running two-node cluster with this process connected as its driver; stopped after the module's tests."""
    assert not ray.is_initialized(), "another test left Ray running"
    # Short: Ray puts Unix sockets under it, whose paths may not pass 107 bytes.
    root = Path(tempfile.mkdtemp(prefix="cs-ray-"))
    cluster = LocalCluster(root)
    try:
        cluster.start()
        ray.init(address=cluster.address, _node_ip_address=HEAD, log_to_driver=False)
        ray.data.DataContext.get_current().enable_progress_bars = False
        wait_for("two nodes", lambda: sum(n["Alive"] for n in ray.nodes()) == 2, START_SECONDS)
        yield cluster
    except Exception:
        print(cluster.logs())
        raise
    finally:
        ray.shutdown()
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


def test_a_two_node_cluster_keeps_what_the_cli_keeps_over_loopback_alone(two_nodes, corpus):
    path, cli_kept = corpus
    nodes = {node["NodeManagerAddress"] for node in ray.nodes() if node["Alive"]}
    assert nodes == {HEAD, SECOND}
    watch = ConnectionWatch(two_nodes)
    watch.start()
    try:
        with time_limit(TEST_SECONDS):
            ds = ray.data.read_json(path.as_uri(), filesystem=fsspec.filesystem("file"))
            result = cray.filter_dataset(ds, RULES, id_column="id", compute=ray.data.ActorPoolStrategy(size=2),
                                         num_cpus=0.5)
            ray_kept = result.kept.take_all()
    finally:
        watch.done.set()
        watch.join(timeout=30)
    watch.look()  # once more, after the last rows came back
    assert sorted(json.dumps(r, sort_keys=True) for r in ray_kept) == \
        sorted(json.dumps(r, sort_keys=True) for r in cli_kept)
    assert 0 < len(cli_kept) < 300
    assert watch.looks >= 2 and {HEAD, SECOND} <= watch.peers, watch.peers
    assert not watch.found, sorted(watch.found)
