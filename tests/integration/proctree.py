"""Writes a small, fixed /proc tree for the host probe's `root:` option, so that the
values tocsind archives and serves are known in advance."""

import os

LOADAVG = "0.52 0.58 0.59 2/345 12345\n"
STAT = """cpu  1000 0 500 8000 100 0 50 0 0 0
cpu0 1000 0 500 8000 100 0 50 0 0 0
intr 123456 0 0
ctxt 987654321
btime 1700000000
processes 4242
procs_running 3
procs_blocked 1
"""
MEMINFO = """MemTotal:        2048000 kB
MemFree:          512000 kB
MemAvailable:    1024000 kB
Buffers:           10240 kB
Cached:           204800 kB
SwapTotal:             0 kB
SwapFree:              0 kB
"""
NETDEV = """Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo:181005683161 224490607    0    0    0     0          0         0 181005683161 224490607    0    0    0     0       0          0
"""
DISKSTATS = "   8       0 sda 100 0 800 50 200 0 1600 100 0 150 150 0 0 0 0\n"


def write_proc_tree(root, loadavg=LOADAVG):
    proc = os.path.join(root, "proc")
    os.makedirs(os.path.join(proc, "net"), exist_ok=True)
    files = {
        "loadavg": loadavg,
        "stat": STAT,
        "meminfo": MEMINFO,
        "mounts": "",
        "diskstats": DISKSTATS,
        "net/dev": NETDEV,
    }
    for name, text in files.items():
        with open(os.path.join(proc, name), "w") as f:
            f.write(text)
    return root
