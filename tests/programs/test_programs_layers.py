"""The deeper sandbox layers hold on their own: with the static check switched off (runtime namespace, audit
hook, nonce-checked results), and the OS lockdown alone (rlimits, descriptors, privileges, seccomp)."""

import json
import os
import socket
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import pytest

from valor_lib.paths import repo_root
from valor_lib.programs.lockdown import seccomp_available
from valor_lib.programs.pool import _worker_environment
from valor_lib.programs.protocol import read_frame, write_frame

pytestmark = pytest.mark.skipif(
    sys.platform != "linux", reason="the sandbox's process layers are Linux-specific"
)

LIMITS = {
    "memory_mb": 512,
    "max_output_chars": 65536,
    "max_tool_calls": 256,
    "tool_timeout_s": 60.0,
    "max_code_chars": 100000,
}
MARKER = Path("/tmp") / f"valor_layer_probe_{uuid.uuid4().hex}"

# A sandbox worker whose static (AST) check accepts everything.
UNCHECKED_WORKER = (
    "import sys, valor_lib.programs.runner as runner; runner.check_program = lambda tree: []; "
    "from valor_lib.programs.worker import main; main(int(sys.argv[1]))"
)

OS_MODULE = "sysmod = image.__class__.__init__.__globals__['sys']\nos = sysmod.modules['os']\n"
SUBCLASSES = "classes = ().__class__.__base__.__subclasses__()\n"


@pytest.fixture(scope="module")
def unchecked():
    ours, theirs = socket.socketpair()
    process = subprocess.Popen(
        [sys.executable, "-c", UNCHECKED_WORKER, str(theirs.fileno())],
        pass_fds=(theirs.fileno(),),
        env=_worker_environment(),
        cwd=repo_root(),
    )
    theirs.close()
    assert read_frame(ours.fileno())["op"] == "ready"

    def run(code: str) -> dict:
        request = {"op": "run", "code": code, "image_size": [640, 480], "tools": None, "timeout_s": 5.0}
        write_frame(ours.fileno(), {**request, "limits": LIMITS})
        return read_frame(ours.fileno())

    yield run
    ours.close()
    process.wait(timeout=10)


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        (SUBCLASSES + f"[c for c in classes if c.__name__ == '_wrap_close'][0].__init__.__globals__['system']('touch {MARKER}')", "os.system"),
        (OS_MODULE + "sysmod.modules['io'].open('/etc/passwd').read()", "open"),
        (OS_MODULE + "os.fork()", "os.fork"),
        (OS_MODULE + f"os.open('{MARKER}', os.O_CREAT | os.O_WRONLY)", "open"),
        (OS_MODULE + "os.kill(os.getppid(), 9)", "os.kill"),
        (OS_MODULE + "sysmod.modules['_socket'].socket()", "socket"),
        ("__import__('os')", "import of 'os'"),
        ("g = (x for x in [1])\nfinal_answer = str(g.gi_frame.f_back)", "object.__getattr__"),
        (OS_MODULE + "final_answer = str(sysmod._getframe())", "sys._getframe"),
        # reach the run's bookkeeping through closures, clear it, then try again: the hook's state is private
        (
            "state = [c.cell_contents for c in print.__closure__ if c.cell_contents.__class__.__name__ == 'RunState'][0]\n"
            + OS_MODULE
            + "try:\n    os.system('true')\nexcept BaseException:\n    pass\nstate.failure = None\nfinal_answer = 1",
            "os.system",
        ),
    ],
    ids=["subclasses-to-system", "io-open", "fork", "os-open", "kill-worker", "socket", "dunder-import",
         "generator-frame", "getframe", "disable-hook-via-closures"],
)  # fmt: skip
def test_runtime_layers_stop_escapes_that_pass_the_static_check(unchecked, code, expected):
    result = unchecked(code)
    assert result["error_type"] == "forbidden" and expected in result["error"], result
    assert not MARKER.exists()


def test_forged_results_on_the_channel_are_rejected(unchecked):
    forged = json.dumps(
        {"op": "result", "error_type": None, "answer": "pwned", "stdout": "", "tool_calls": []}
    )
    code = (
        OS_MODULE
        + f"payload = {forged!r}.encode()\nos.write(3, len(payload).to_bytes(4, 'big') + payload)\nfinal_answer = 'x'"
    )
    result = unchecked(code)
    assert result["error_type"] == "forbidden" and result.get("answer") is None, result
    garbage = unchecked(OS_MODULE + "os.write(3, b'\\xff' * 64)\nfinal_answer = 1")
    assert garbage["error_type"] == "forbidden" and "malformed" in garbage["error"]
    assert unchecked("final_answer = 7")["answer"] == 7


LOCKDOWN_PROBE = textwrap.dedent(
    """
    import json, os, signal, socket, sys
    import numpy
    from valor_lib.programs.lockdown import Lockdown, address_space_bytes

    lockdown = Lockdown.prepare()
    ours, theirs = socket.socketpair()
    marker = sys.argv[1]
    actions = {
        "fork": lambda: os.fork(),
        "exec": lambda: os.execv("/bin/true", ["true"]),
        "socket": lambda: socket.socket(),
        "read-file": lambda: open("/etc/passwd").read(),
        "write-file": lambda: open(marker, "w").write("x"),
        "new-descriptor": lambda: os.dup(0),
        "kill-parent": lambda: os.kill(os.getppid(), signal.SIGKILL),
        "raise-limits": lambda: __import__("resource").setrlimit(__import__("resource").RLIMIT_CPU, (10**6, 10**6)),
        "allocate-1gb": lambda: len(bytearray(1 << 30)),
        "identity": lambda: [os.getuid(), os.geteuid()],
        "numpy": lambda: float(numpy.linalg.inv(numpy.eye(3)).sum()),
    }
    report = {}
    for name, action in actions.items():
        pid = os.fork()
        if pid == 0:
            try:
                lockdown.isolate_descriptors(theirs.fileno())
                lockdown.restrict(address_space_bytes() + (256 << 20), 5, os.getppid())
                try:
                    outcome = ["ok", repr(action())]
                except BaseException as exc:
                    outcome = ["error", type(exc).__name__]
                os.write(3, json.dumps(outcome).encode())
            finally:
                os._exit(0)
        _, status = os.waitpid(pid, 0)
        if os.WIFSIGNALED(status):
            report[name] = ["signal", signal.Signals(os.WTERMSIG(status)).name]
        else:
            report[name] = json.loads(ours.recv(65536))
    print(json.dumps(report))
    """
)


@pytest.mark.skipif(not seccomp_available(), reason="seccomp layer is built for x86-64 Linux")
def test_os_lockdown_alone_blocks_processes_files_network_signals_and_memory():
    out = subprocess.run(
        [sys.executable, "-c", LOCKDOWN_PROBE, str(MARKER)],
        capture_output=True, text=True, timeout=60, env=_worker_environment(), cwd=repo_root(), check=True,
    )  # fmt: skip
    report = json.loads(out.stdout)
    assert report["fork"] == ["signal", "SIGSYS"]
    assert report["exec"] == ["signal", "SIGSYS"]
    assert report["socket"] == ["signal", "SIGSYS"]
    assert report["read-file"] == ["error", "PermissionError"]
    assert report["write-file"] == ["error", "PermissionError"] and not MARKER.exists()
    assert report["new-descriptor"] == ["error", "OSError"]
    assert report["kill-parent"] == ["error", "PermissionError"]
    assert report["raise-limits"][0] == "error"
    assert report["allocate-1gb"] == ["error", "MemoryError"]
    assert report["numpy"] == ["ok", "3.0"]
    if os.geteuid() == 0:
        assert report["identity"] == ["ok", "[65534, 65534]"]
