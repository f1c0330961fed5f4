"""The machine probe: what the results were measured on."""
import datetime
import os
import platform
import subprocess

from . import ROOT


def _first_line(cmd):
    try:
        out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=10)
        text = (out.stdout or out.stderr).strip()
        return text.splitlines()[0] if text else None
    except (OSError, subprocess.SubprocessError):
        return None


def machine_info():
    info = {}
    cpu = None
    flags = ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if cpu is None and line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                elif not flags and line.startswith("flags"):
                    flags = line
    except OSError:
        pass
    info["cpu"] = cpu or platform.processor() or platform.machine()
    info["cpus"] = os.cpu_count()
    try:
        info["cpus_usable"] = len(os.sched_getaffinity(0))
    except AttributeError:
        info["cpus_usable"] = os.cpu_count()
    info["vm"] = " hypervisor" in flags
    try:
        with open("/proc/meminfo") as f:
            kb = int(f.readline().split()[1])
        info["memory_gib"] = round(kb / 1048576, 1)
    except (OSError, ValueError, IndexError):
        pass
    info["arch"] = platform.machine()
    info["kernel"] = platform.release()
    try:
        with open("/etc/os-release") as f:
            for line in f:
                if line.startswith("PRETTY_NAME="):
                    info["os"] = line.split("=", 1)[1].strip().strip('"')
    except OSError:
        pass
    info["cc"] = _first_line(["cc", "--version"])
    info["python"] = platform.python_version()
    lj = _first_line(["luajit", "-v"])
    info["luajit"] = lj.split(" -- ")[0] if lj else None
    ngx = _first_line(["nginx", "-v"])
    info["nginx"] = ngx.split("/", 1)[1] if ngx and "/" in ngx else ngx
    commit = _first_line(["git", "rev-parse", "HEAD"])
    info["commit"] = commit
    if commit:
        try:
            dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                                   capture_output=True, text=True, timeout=20).stdout.strip()
            info["dirty"] = bool(dirty)
        except (OSError, subprocess.SubprocessError):
            info["dirty"] = None
    info["date"] = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return info


def machine_line(m):
    parts = ["%s, %s CPU%s%s" % (m.get("cpu"), m.get("cpus"), "" if m.get("cpus") == 1 else "s",
                                 " (VM)" if m.get("vm") else "")]
    if m.get("memory_gib"):
        parts.append("%s GiB" % m["memory_gib"])
    parts.append("Linux %s" % m.get("kernel"))
    if m.get("os"):
        parts.append(m["os"])
    return ", ".join(parts)


def commit_text(m):
    c = m.get("commit")
    if not c:
        return "unknown commit"
    return "commit %s%s" % (c[:10], " + uncommitted changes" if m.get("dirty") else "")

