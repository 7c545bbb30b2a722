"""Peak memory of the process that did the work.

``ru_maxrss`` is the wrong figure for a child started by a large parent: Linux
carries the parent's high-water mark through fork and exec. ``VmHWM`` in
``/proc/self/status`` belongs to the current address space, which exec made
new, so a fresh child reports only what it used itself.
"""

import resource


def peak_rss_mib() -> float:
    """The process's own peak resident memory in MiB (VmHWM; ru_maxrss where /proc is missing)."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
