#!/usr/bin/env python3
"""Runs a command and prints, on fd 3, what the kernel counted for it: the bytes it read from and
wrote to storage (/proc/PID/io read_bytes / write_bytes, read while the process is a zombie, after
it exited and before it is reaped) and its peak RSS (wait4). Usage: io-of.py CMD [ARGS...] 3>FILE"""
import os
import subprocess
import sys

child = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL)
os.waitid(os.P_PID, child.pid, os.WEXITED | os.WNOWAIT)
with open(f'/proc/{child.pid}/io') as f:
    io = dict(line.split(': ') for line in f.read().splitlines())
_, status, usage = os.wait4(child.pid, 0)
with os.fdopen(3, 'w') as out:
    out.write(f"{io['read_bytes'].strip()} {io['write_bytes'].strip()} {usage.ru_maxrss}\n")
sys.exit(os.waitstatus_to_exitcode(status))
