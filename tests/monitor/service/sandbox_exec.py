"""Exec a command under the unit's in-process limits: MemoryDenyWriteExecute and the system-call filter.

Usage: python sandbox_exec.py SYSCALLS_FILE -- COMMAND...

``SYSCALLS_FILE`` lists the allowed system calls, one per line (expanded from
the unit's ``SystemCallFilter=`` groups by ``systemd-analyze syscall-filter``);
every other call fails with EPERM, as ``SystemCallErrorNumber=EPERM`` says.
The kernel's PR_SET_MDWE stands in for ``MemoryDenyWriteExecute=yes``. The
caller provides ``NoNewPrivileges`` (required to load a filter unprivileged).
"""

from __future__ import annotations

import ctypes
import os
import sys

PR_SET_MDWE, PR_GET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN = 65, 66, 1
SCMP_ACT_ALLOW = 0x7FFF0000
EPERM = 1


def main() -> None:
    names = [n for n in open(sys.argv[1]).read().split() if n]
    command = sys.argv[sys.argv.index("--") + 1 :]
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN, 0, 0, 0) != 0:
        sys.exit(f"sandbox: PR_SET_MDWE failed (errno {ctypes.get_errno()})")
    seccomp = ctypes.CDLL("libseccomp.so.2")
    seccomp.seccomp_init.restype = ctypes.c_void_p
    seccomp.seccomp_init.argtypes = [ctypes.c_uint32]
    seccomp.seccomp_syscall_resolve_name.argtypes = [ctypes.c_char_p]
    seccomp.seccomp_rule_add.argtypes = [
        ctypes.c_void_p,
        ctypes.c_uint32,
        ctypes.c_int,
        ctypes.c_uint,
    ]
    seccomp.seccomp_load.argtypes = [ctypes.c_void_p]
    ctx = seccomp.seccomp_init(0x00050000 | EPERM)  # SCMP_ACT_ERRNO(EPERM)
    allowed = 0
    for name in names:
        nr = seccomp.seccomp_syscall_resolve_name(name.encode())
        if nr >= 0 and seccomp.seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 0) == 0:
            allowed += 1
    if seccomp.seccomp_load(ctx) != 0:
        sys.exit("sandbox: seccomp_load failed (is no_new_privs set?)")
    print(f"sandbox: {allowed} system calls allowed, MDWE {libc.prctl(PR_GET_MDWE, 0, 0, 0, 0)}",
          file=sys.stderr, flush=True)  # fmt: skip
    os.execvp(command[0], command)


if __name__ == "__main__":
    main()
