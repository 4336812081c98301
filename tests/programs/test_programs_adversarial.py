"""Escape and abuse attempts: each must fail with the right error_type, and the executor must still run a
normal program right after it (on the same worker)."""

import os
import uuid
from pathlib import Path

import pytest

from valor_lib.programs import execute_many

HEALTHY = "final_answer = len(gd_detect(image, 'cup')) + 41"
MARKER = f"valor_sandbox_probe_{uuid.uuid4().hex}"
TARGETS = [Path("/tmp") / MARKER, Path("/") / MARKER, Path.cwd() / MARKER]

CASES = {
    # time
    "infinite-loop": ("while True:\n    pass", "timeout"),
    "loop-swallowing-exceptions": (
        "while True:\n    try:\n        pass\n    except:\n        pass",
        "timeout",
    ),
    # memory
    "bytearray-bomb": ("x = bytearray(10**10)", "memory"),
    "list-bomb": ("x = [0] * (10**9)", "memory"),
    "numpy-bomb": ("x = np.ones((10**5, 10**5))", "memory"),
    "growing-bomb": ("chunks = []\nwhile True:\n    chunks.append(bytearray(10**8))", "memory"),
    # processes
    "fork-via-os": ("import os\nos.fork()", "forbidden"),
    "fork-via-dunder-import": ("__import__('os').fork()", "forbidden"),
    "fork-via-numpy-attribute": ("np.os.fork()", "forbidden"),
    "fork-via-getattr-string": ("getattr(np, 'o' + 's').fork()", "forbidden"),
    "subprocess": ("import subprocess\nsubprocess.run(['true'])", "forbidden"),
    "threads": ("import threading\nthreading.Thread(target=print).start()", "forbidden"),
    # files
    "write-outside": (f"open('/tmp/{MARKER}', 'w').write('x')", "forbidden"),
    "write-inside-cwd": (f"open('{MARKER}', 'w').write('x')", "forbidden"),
    "write-numpy-save": (f"np.save('/tmp/{MARKER}', np.zeros(3))", "forbidden"),
    "write-numpy-savetxt": (f"np.savetxt('{MARKER}', np.zeros(3))", "forbidden"),
    "write-array-tofile": (f"np.zeros(3).tofile('/tmp/{MARKER}')", "forbidden"),
    "write-tofile-via-getattr": (f"getattr(np.zeros(3), 'to' + 'file')('/tmp/{MARKER}')", "forbidden"),
    "write-array-dump": (f"np.zeros(3).dump('/tmp/{MARKER}')", "forbidden"),
    "write-memmap": (f"np.memmap('/tmp/{MARKER}', mode='w+', shape=(3,))", "forbidden"),
    "read-passwd": ("final_answer = open('/etc/passwd').read()", "forbidden"),
    "read-numpy-loadtxt": ("final_answer = np.loadtxt('/etc/passwd', dtype=str)", "forbidden"),
    "read-numpy-fromfile": ("final_answer = np.fromfile('/etc/passwd', dtype=np.uint8)", "forbidden"),
    "read-numpy-load": ("final_answer = np.load('/etc/passwd', allow_pickle=True)", "forbidden"),
    "read-numpy-ctypeslib": ("final_answer = np.ctypeslib", "forbidden"),
    # network
    "socket": ("import socket\nsocket.create_connection(('127.0.0.1', 80))", "forbidden"),
    # introspection walks
    "subclasses-walk": ("final_answer = str(().__class__.__base__.__subclasses__())", "forbidden"),
    "globals-walk": ("final_answer = str(gd_detect.__globals__)", "forbidden"),
    "closure-walk": ("final_answer = str(depth.__closure__)", "forbidden"),
    "generator-frame-walk": (
        "g = (x for x in [1])\nfinal_answer = str(g.gi_frame.f_back.f_globals)",
        "forbidden",
    ),
    "traceback-frame-walk": (
        "try:\n    1 / 0\nexcept Exception as e:\n    final_answer = str(e.__traceback__.tb_frame.f_globals)",
        "forbidden",
    ),
    "getattr-dunder": ("final_answer = str(getattr(image, '__class__'))", "forbidden"),
    "getattr-dunder-built-at-runtime": (
        "final_answer = str(getattr(image, '_' * 2 + 'class' + '_' * 2))",
        "forbidden",
    ),
    "format-string-walk": ("final_answer = '{0.__class__.__mro__}'.format(image)", "forbidden"),
    "format-from-variable": (
        "template = '{0.__init__.__globals__}'\nfinal_answer = template.format(depth)",
        "forbidden",
    ),
    "match-class-attribute": (
        "match image:\n    case object(__class__=c):\n        final_answer = str(c)",
        "forbidden",
    ),
    "numpy-raw-memory": ("final_answer = np.zeros(3).ctypes.data", "forbidden"),
    "numpy-as-strided": (
        "final_answer = np.lib.stride_tricks.as_strided(np.zeros(1), (10**6,), (8,))",
        "forbidden",
    ),
    "caught-violation-is-sticky": (
        "try:\n    getattr(image, '__dict__')\nexcept:\n    pass\nfinal_answer = 1",
        "forbidden",
    ),
    # interpreter tampering
    "sys-modules": ("import sys\nsys.modules['math'] = None", "forbidden"),
    "builtins-dict": ("__builtins__['print'] = None", "forbidden"),
    "builtins-via-globals": ("globals()['__builtins__']", "forbidden"),
    "builtins-module": ("import builtins\nbuiltins.open = None", "forbidden"),
    "signal-handler": ("import signal\nsignal.signal(signal.SIGALRM, print)", "forbidden"),
    "recursion-limit": ("import sys\nsys.setrecursionlimit(10**9)", "forbidden"),
    "os-exit": ("import os\nos._exit(0)", "forbidden"),
    "system-exit": ("raise SystemExit(0)", "forbidden"),
    "keyboard-interrupt": ("raise KeyboardInterrupt", "forbidden"),
    "exec": ("exec('import os')", "forbidden"),
    "eval": ("final_answer = eval('1 + 1')", "forbidden"),
    "compile": ("compile('1', '<x>', 'eval')", "forbidden"),
    # output
    "stdout-flood": ("while True:\n    print('x' * 1000)", "output_limit"),
    "stdout-flood-caught": (
        "try:\n    print('x' * 10**6)\nexcept:\n    pass\nfinal_answer = 1",
        "output_limit",
    ),
    "huge-answer": ("final_answer = 'x' * 10**6", "output_limit"),
    "deeply-nested-answer": ("a = []\nfor _ in range(10**5):\n    a = [a]\nfinal_answer = a", "output_limit"),
    "huge-int-answer": ("final_answer = 10**5000", "output_limit"),
    # recursion and pathological source
    "deep-recursion": ("def f(n):\n    return f(n + 1)\nfinal_answer = f(0)", "runtime"),
    "deeply-nested-source": ("final_answer = " + "(" * 300 + "1" + ")" * 300, "syntax"),
    "huge-source": ("x = 1\n" * 50_000, "syntax"),
    # pickling and crafted answers
    "answer-with-reduce": (
        "class Evil:\n    def __reduce__(self):\n        return (print, ('pwned',))\nfinal_answer = Evil()",
        "runtime",
    ),
    "answer-str-subclass": ("class S(str):\n    pass\nfinal_answer = S('yes')", "runtime"),
    "answer-function": ("final_answer = lambda: 1", "runtime"),
    "answer-module": ("final_answer = np", "runtime"),
    "answer-non-str-keys": ("final_answer = {(1, 2): 'x'}", "runtime"),
    # absurd tool arguments (dummy tools)
    "tool-huge-string": ("final_answer = gd_detect(image, 'cat, ' * 10**6)", "runtime"),
    "tool-nan-bbox": ("final_answer = depth(image, [float('nan')] * 4)", "runtime"),
    "tool-nested-junk": ("final_answer = depth(image, [[[[1]]]] * 4)", "runtime"),
    "tool-fake-image": ("final_answer = vqa({'path': '/etc/passwd'}, None, 'what?')", "runtime"),
    "tool-flood": ("for _ in range(10**6):\n    depth(image, [0, 0, 1, 1])", "runtime"),
}


@pytest.fixture(autouse=True)
def no_file_appears():
    yield
    leaked = [p for p in TARGETS if p.exists() or Path(f"{p}.npy").exists()]
    for path in leaked:
        os.remove(path)
    assert not leaked, f"a program wrote {leaked}"


@pytest.mark.parametrize(("code", "error_type"), list(CASES.values()), ids=list(CASES))
def test_escape_attempt_is_classified_and_executor_survives(code, error_type):
    timeout = 1.0 if error_type == "timeout" else 10.0  # the others end on their own, long before
    attempt, after = execute_many([code, HEALTHY], timeout_s=timeout, workers=1)
    assert not attempt.ok and attempt.answer is None
    assert attempt.error_type == error_type, attempt
    assert attempt.error
    assert after.ok and after.answer == 42, after
