"""The operating-system layer of the sandbox, applied in each freshly forked program process.

In order: stdin/stdout/stderr to /dev/null, the channel moved to fd 3 and every other descriptor closed;
own process group; resource limits (address space, CPU seconds, file size 0, 4 open files, no new processes,
no core dumps, no locked memory); root drops to ``nobody``; death with the worker; ``no_new_privs``; and on
x86-64 Linux a seccomp filter. The filter kills the process (SIGSYS) on process creation, exec, sockets,
ptrace, SysV IPC, mounts and other admin calls, and fails with EPERM every file open or change, signals to
any process, limit changes, ioctl, prctl and executable memory.
"""

from __future__ import annotations

import ctypes
import errno
import os
import platform
import resource
import signal
import struct
import sys
from dataclasses import dataclass
from typing import Any

CHANNEL_FD = 3
_NOBODY = 65534

# x86-64 system call numbers (asm/unistd_64.h).
_KILL_SYSCALLS = {
    "clone": 56, "fork": 57, "vfork": 58, "execve": 59, "clone3": 435, "execveat": 322,
    "socket": 41, "connect": 42, "accept": 43, "bind": 49, "listen": 50, "socketpair": 53, "accept4": 288,
    "ptrace": 101, "process_vm_readv": 310, "process_vm_writev": 311,
    "pidfd_open": 434, "pidfd_send_signal": 424, "pidfd_getfd": 438,
    "shmget": 29, "shmat": 30, "shmctl": 31, "semget": 64, "semop": 65, "semctl": 66,
    "msgget": 68, "msgsnd": 69, "msgrcv": 70, "msgctl": 71, "mq_open": 240,
    "mount": 165, "umount2": 166, "chroot": 161, "pivot_root": 155, "unshare": 272, "setns": 308,
    "reboot": 169, "kexec_load": 246, "kexec_file_load": 320, "init_module": 175, "finit_module": 313,
    "delete_module": 176, "bpf": 321, "perf_event_open": 298, "keyctl": 250, "add_key": 248,
    "request_key": 249, "swapon": 167, "swapoff": 168, "acct": 163, "settimeofday": 164,
    "clock_settime": 227, "sethostname": 170, "setdomainname": 171, "iopl": 172, "ioperm": 173,
    "syslog": 103, "personality": 135, "userfaultfd": 323, "memfd_create": 319, "uselib": 134,
    "io_uring_setup": 425, "io_uring_enter": 426, "io_uring_register": 427,
    "setuid": 105, "setgid": 106, "setreuid": 113, "setregid": 114, "setresuid": 117, "setresgid": 119,
    "setgroups": 116, "setfsuid": 122, "setfsgid": 123, "capset": 126,
    "name_to_handle_at": 303, "open_by_handle_at": 304, "inotify_init": 253, "inotify_init1": 294,
    "fanotify_init": 300, "quotactl": 179, "vhangup": 153,
}  # fmt: skip
_EPERM_SYSCALLS = {
    "open": 2, "openat": 257, "openat2": 437, "creat": 85,
    "mkdir": 83, "mkdirat": 258, "rmdir": 84, "unlink": 87, "unlinkat": 263, "rename": 82, "renameat": 264,
    "renameat2": 316, "link": 86, "linkat": 265, "symlink": 88, "symlinkat": 266, "chmod": 90, "fchmod": 91,
    "fchmodat": 268, "chown": 92, "fchown": 93, "lchown": 94, "fchownat": 260, "truncate": 76,
    "ftruncate": 77, "mknod": 133, "mknodat": 259, "utime": 132, "utimes": 235, "utimensat": 280,
    "futimesat": 261, "setxattr": 188, "lsetxattr": 189, "fsetxattr": 190, "removexattr": 197,
    "lremovexattr": 198, "fremovexattr": 199,
    "kill": 62, "tkill": 200, "tgkill": 234, "setrlimit": 160, "prlimit64": 302, "ioctl": 16, "prctl": 157,
}  # fmt: skip
_PROT_CHECKED_SYSCALLS = {"mmap": 9, "mprotect": 10, "pkey_mprotect": 329}  # prot is argument 2
_PROT_EXEC = 0x4

_AUDIT_ARCH_X86_64 = 0xC000003E
_X32_SYSCALL_BIT = 0x40000000
_RET_KILL_PROCESS = 0x80000000
_RET_ERRNO = 0x00050000
_RET_ALLOW = 0x7FFF0000
_LD_W_ABS, _JEQ_K, _JGE_K, _JSET_K, _RET_K = 0x20, 0x15, 0x35, 0x45, 0x06
_PR_SET_PDEATHSIG, _PR_SET_NO_NEW_PRIVS, _PR_SET_SECCOMP, _SECCOMP_MODE_FILTER = 1, 38, 22, 2


def _seccomp_program() -> bytes:
    """The BPF filter described in the module docstring, as ``struct sock_filter`` records."""
    kill, deny, exec_check = "kill", "deny", "exec_check"
    code: list[tuple[int, int | str, int | str, int]] = [
        (_LD_W_ABS, 0, 0, 4),  # seccomp_data.arch
        (_JEQ_K, 1, 0, _AUDIT_ARCH_X86_64),
        (_RET_K, 0, 0, _RET_KILL_PROCESS),
        (_LD_W_ABS, 0, 0, 0),  # seccomp_data.nr
        (_JGE_K, kill, 0, _X32_SYSCALL_BIT),
    ]
    code += [(_JEQ_K, kill, 0, nr) for nr in _KILL_SYSCALLS.values()]
    code += [(_JEQ_K, deny, 0, nr) for nr in _EPERM_SYSCALLS.values()]
    code += [(_JEQ_K, exec_check, 0, nr) for nr in _PROT_CHECKED_SYSCALLS.values()]
    code += [(_RET_K, 0, 0, _RET_ALLOW)]
    labels = {exec_check: len(code)}
    code += [
        (_LD_W_ABS, 0, 0, 16 + 2 * 8),  # low word of args[2] (prot)
        (_JSET_K, deny, 0, _PROT_EXEC),
        (_RET_K, 0, 0, _RET_ALLOW),
    ]
    labels[deny] = len(code)
    code += [(_RET_K, 0, 0, _RET_ERRNO | errno.EPERM)]
    labels[kill] = len(code)
    code += [(_RET_K, 0, 0, _RET_KILL_PROCESS)]

    def offset(index: int, target: int | str) -> int:
        if isinstance(target, int):
            return target
        jump = labels[target] - index - 1
        assert 0 <= jump < 256, "BPF jump out of range"
        return jump

    return b"".join(
        struct.pack("HBBI", op, offset(i, jt), offset(i, jf), k) for i, (op, jt, jf, k) in enumerate(code)
    )


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


def seccomp_available() -> bool:
    """Whether this machine gets the seccomp layer (x86-64 Linux)."""
    return sys.platform == "linux" and platform.machine() == "x86_64"


@dataclass
class Lockdown:
    """Everything prepared in the worker before forking, so the forked child only issues system calls."""

    devnull_fd: int
    prctl: Any
    filter_buffer: ctypes.Array | None
    filter_prog: _SockFprog | None

    @classmethod
    def prepare(cls) -> Lockdown:
        prctl = filter_buffer = filter_prog = None
        if sys.platform == "linux":
            prctl = ctypes.CDLL(None, use_errno=True).prctl
            prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
            prctl.restype = ctypes.c_int
        if seccomp_available():
            program = _seccomp_program()
            filter_buffer = ctypes.create_string_buffer(program, len(program))
            filter_prog = _SockFprog(len(program) // 8, ctypes.addressof(filter_buffer))
        return cls(os.open(os.devnull, os.O_RDWR), prctl, filter_buffer, filter_prog)

    def _prctl(self, option: int, arg: int) -> None:
        if self.prctl is not None and self.prctl(option, arg, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), f"prctl({option}) failed")

    def isolate_descriptors(self, channel_fd: int) -> None:
        """stdin/stdout/stderr to /dev/null, the channel to fd :data:`CHANNEL_FD`, others closed."""
        for fd in (0, 1, 2):
            os.dup2(self.devnull_fd, fd)
        os.dup2(channel_fd, CHANNEL_FD)
        os.closerange(CHANNEL_FD + 1, max(os.sysconf("SC_OPEN_MAX"), channel_fd + 1, self.devnull_fd + 1))

    def restrict(self, address_space_bytes: int | None, cpu_seconds: int, worker_pid: int) -> None:
        """Lock the calling (freshly forked, descriptors isolated) process down; raises OSError on failure."""
        os.setpgid(0, 0)
        limits = {
            "RLIMIT_CPU": cpu_seconds,
            "RLIMIT_FSIZE": 0,
            "RLIMIT_NOFILE": CHANNEL_FD + 1,
            "RLIMIT_NPROC": 0,
            "RLIMIT_CORE": 0,
            "RLIMIT_MEMLOCK": 0,
            "RLIMIT_MSGQUEUE": 0,
            "RLIMIT_AS": address_space_bytes,
        }
        for name, value in limits.items():
            which = getattr(resource, name, None)  # some limits exist on Linux only
            if which is not None and value is not None:
                hard = value + 1 if name == "RLIMIT_CPU" else value
                resource.setrlimit(which, (value, hard))
        if os.geteuid() == 0:
            try:
                os.setgroups([])
                os.setresgid(_NOBODY, _NOBODY, _NOBODY)
                os.setresuid(_NOBODY, _NOBODY, _NOBODY)
            except OSError:
                pass  # no CAP_SETUID in this container: the other layers still hold
        self._prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != worker_pid:
            os._exit(1)  # the worker died before the death signal was armed
        if self.filter_prog is not None:
            self._prctl(_PR_SET_NO_NEW_PRIVS, 1)
            if (
                self.prctl(_PR_SET_SECCOMP, _SECCOMP_MODE_FILTER, ctypes.addressof(self.filter_prog), 0, 0)
                != 0
            ):
                raise OSError(ctypes.get_errno(), "installing the seccomp filter failed")


def address_space_bytes() -> int | None:
    """Current virtual size of this process (from /proc), or None where that is unknown."""
    try:
        with open("/proc/self/statm") as stream:
            return int(stream.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None
