"""The guard: the programs the suite starts reach nothing past loopback.

One child process launches Chromium once and starts Ray once, with the
settings of ``tests/hermetic.py``, under strace; every connect and send of
every process it starts is checked (``hermetic.off_loopback``). Inside
``.ci/run``'s loopback-only namespace nothing could leave anyway, but strace
still records each attempt, so the test means the same there.
"""

import importlib.util
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import hermetic

TESTS = Path(__file__).resolve().parent
TRACED_CALLS = "connect,sendto,sendmsg,sendmmsg,close"


def usable_strace() -> str:
    """The strace program, or a skip that says why it cannot trace here."""
    strace = shutil.which("strace")
    if not strace:
        pytest.skip("strace is not installed (Debian: apt-get install -y strace)")
    able = subprocess.run([strace, "-qq", "-o", os.devnull, "true"], capture_output=True, text=True)
    if able.returncode != 0:  # ptrace refused: under another tracer, or a sandbox that forbids it
        pytest.skip(f"strace cannot trace here: {able.stderr.strip().splitlines()[-1]}")
    return strace


# Run in a child with the suite's environment (conftest applied it to ours).
PROBE = textwrap.dedent("""
    import subprocess, sys
    from pathlib import Path
    sys.path.insert(0, {tests!r})
    import hermetic

    folder = Path({folder!r})
    page = folder / "page.html"
    page.write_text("<html><body><p>offline</p></body></html>")
    if {chromium!r}:
        command = hermetic.chromium_command({chromium!r}, folder / "profile", "--dump-dom", page.as_uri())
        dom = subprocess.run(command, capture_output=True, text=True, timeout=120)
        assert "offline" in dom.stdout, dom.stderr[-2000:]
    if {with_ray!r}:
        import ray
        ray.init(**hermetic.ray_init_kwargs())
        assert ray.get(ray.remote(lambda: 41 + 1).remote()) == 42
        ray.shutdown()
    print("probe done")
""")


def test_the_guard_reads_strace_lines():
    lines = [
        '9 connect(3, {sa_family=AF_UNIX, sun_path="/tmp/ray/session/sockets/raylet"}, 110) = 0',
        '9 connect(4, {sa_family=AF_INET6, sin6_port=htons(8080), sin6_flowinfo=htonl(0), '
        'inet_pton(AF_INET6, "::1", &sin6_addr), sin6_scope_id=0}, 28) = 0',
        '9 connect(5, {sa_family=AF_INET6, sin6_port=htons(53), sin6_flowinfo=htonl(0), '
        'inet_pton(AF_INET6, "2001:4860:4860::8888", &sin6_addr), sin6_scope_id=0}, 28) = 0',
        # A route probe that then sends: it reaches out.
        '10 connect(6, {sa_family=AF_INET, sin_port=htons(53), sin_addr=inet_addr("8.8.8.8")}, 16) = 0',
        '10 sendto(6, "x", 1, MSG_NOSIGNAL, NULL, 0) = 1',
        # A lookup through a loopback resolver still leaves the machine.
        '11 sendto(7, "q", 1, 0, {sa_family=AF_INET, sin_port=htons(53), sin_addr=inet_addr("127.0.0.53")}, 16) = 1',
        '11 sendmmsg(8, [{msg_hdr={msg_name={sa_family=AF_INET, sin_port=htons(443), '
        'sin_addr=inet_addr("169.254.169.254")}, msg_namelen=16}}], 1, 0) = -1 ENETUNREACH',
        '12 connect(9, {sa_family=AF_INET6, sin6_port=htons(80), sin6_flowinfo=htonl(0), '
        'inet_pton(AF_INET6, "::ffff:127.0.0.3", &sin6_addr), sin6_scope_id=0}, 28) = 0',
    ]
    assert hermetic.off_loopback(lines) == [lines[4], lines[5], lines[6]]


@pytest.mark.slow
def test_chromium_and_ray_reach_nothing_past_loopback(tmp_path):
    strace = usable_strace()
    chromium = next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)), "")
    with_ray = importlib.util.find_spec("ray") is not None
    if not chromium and not with_ray:
        pytest.skip("neither Chromium nor Ray is installed: nothing to trace")
    log = tmp_path / "strace.log"
    script = PROBE.format(tests=str(TESTS), folder=str(tmp_path), chromium=chromium, with_ray=with_ray)
    run = subprocess.run([strace, "-f", "-qq", "-e", f"trace={TRACED_CALLS}", "-o", str(log), sys.executable, "-c", script],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0 and "probe done" in run.stdout, run.stderr[-3000:]
    lines = log.read_text(errors="replace").splitlines()
    assert any("connect(" in line for line in lines), "strace recorded no connect at all: the trace did not work"
    assert hermetic.off_loopback(lines) == []
