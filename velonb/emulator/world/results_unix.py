"""Linux and macOS hosts: processes, sockets, accounts and shell history."""

from __future__ import annotations

import datetime as dt
import random
from typing import Any

from velonb.emulator.world.fleet import day_start
from velonb.emulator.world.model import Client
from velonb.emulator.world.results_common import (
    VELO_SERVER,
    cached,
    content_key,
    file_hashes,
    host_key,
    rng_for,
    ts,
)

# name, exe, command line, parent, user, RSS MB, exe KB, where ("all", "linux", "darwin", role)
_LINUX: tuple[tuple[str, str, str, str, str, int, int, str], ...] = (
    ("systemd", "/usr/lib/systemd/systemd", "/sbin/init splash", "", "root", 12, 1_800, "linux"),
    ("kthreadd", "", "", "", "root", 0, 0, "linux"),
    ("systemd-journald", "/usr/lib/systemd/systemd-journald", "/lib/systemd/systemd-journald",
     "systemd", "root", 40, 160, "linux"),
    ("systemd-udevd", "/usr/bin/udevadm", "/lib/systemd/systemd-udevd", "systemd", "root", 7, 580,
     "linux"),
    ("systemd-resolve", "/usr/lib/systemd/systemd-resolved", "/lib/systemd/systemd-resolved",
     "systemd", "systemd-resolve", 13, 580, "linux"),
    ("systemd-timesyn", "/usr/lib/systemd/systemd-timesyncd", "/lib/systemd/systemd-timesyncd",
     "systemd", "systemd-timesync", 7, 60, "linux"),
    ("rsyslogd", "/usr/sbin/rsyslogd", "/usr/sbin/rsyslogd -n -iNONE", "systemd", "syslog", 6,
     780, "linux"),
    ("cron", "/usr/sbin/cron", "/usr/sbin/cron -f -P", "systemd", "root", 3, 60, "linux"),
    ("dbus-daemon", "/usr/bin/dbus-daemon", "@dbus-daemon --system --address=systemd: --nofork "
     "--nopidfile --systemd-activation --syslog-only", "systemd", "messagebus", 5, 250, "linux"),
    ("sshd", "/usr/sbin/sshd", "sshd: /usr/sbin/sshd -D [listener] 0 of 10-100 startups",
     "systemd", "root", 9, 900, "linux"),
    ("agetty", "/usr/sbin/agetty", "/sbin/agetty -o -p -- \\u --noclear tty1 linux", "systemd",
     "root", 2, 60, "linux"),
    ("velociraptor", "/usr/local/bin/velociraptor", "/usr/local/bin/velociraptor --config "
     "/etc/velociraptor/client.config.yaml client", "systemd", "root", 70, 52_000, "linux"),
    ("nginx", "/usr/sbin/nginx", "nginx: master process /usr/sbin/nginx -g daemon on; "
     "master_process on;", "systemd", "root", 6, 1_200, "web"),
    ("nginx", "/usr/sbin/nginx", "nginx: worker process", "nginx", "www-data", 9, 1_200, "web"),
    ("nginx", "/usr/sbin/nginx", "nginx: worker process", "nginx", "www-data", 9, 1_200, "web"),
    ("gunicorn", "/usr/bin/python3.10", "/opt/portal/venv/bin/python3 /opt/portal/venv/bin/"
     "gunicorn -w 4 -b 127.0.0.1:8080 portal.wsgi", "systemd", "deploy", 85, 5_800, "web"),
    ("postgres", "/usr/pgsql-16/bin/postgres", "/usr/pgsql-16/bin/postgres -D "
     "/var/lib/pgsql/16/data/", "systemd", "postgres", 160, 9_400, "db"),
    ("postgres", "/usr/pgsql-16/bin/postgres", "postgres: checkpointer", "postgres", "postgres",
     30, 9_400, "db"),
    ("postgres", "/usr/pgsql-16/bin/postgres", "postgres: walwriter", "postgres", "postgres", 12,
     9_400, "db"),
    ("java", "/usr/lib/jvm/java-17-openjdk-amd64/bin/java", "/usr/bin/java -Xmx2g -jar "
     "/opt/app/harbor-app.jar --spring.profiles.active=prod", "systemd", "svcapp", 1_400, 14,
     "app"),
    ("fail2ban-server", "/usr/bin/python3.11", "/usr/bin/python3 /usr/bin/fail2ban-server -xf "
     "start", "systemd", "root", 30, 5_800, "bastion"),
    ("launchd", "/sbin/launchd", "/sbin/launchd", "", "root", 20, 300, "darwin"),
    ("WindowServer", "/System/Library/PrivateFrameworks/SkyLight.framework/Resources/"
     "WindowServer", "/System/Library/PrivateFrameworks/SkyLight.framework/Resources/"
     "WindowServer -daemon", "launchd", "_windowserver", 250, 300, "darwin"),
    ("Finder", "/System/Library/CoreServices/Finder.app/Contents/MacOS/Finder",
     "/System/Library/CoreServices/Finder.app/Contents/MacOS/Finder", "launchd", "USER", 120,
     4_000, "darwin"),
    ("Safari", "/Applications/Safari.app/Contents/MacOS/Safari",
     "/Applications/Safari.app/Contents/MacOS/Safari", "launchd", "USER", 300, 100, "darwin"),
    ("velociraptor", "/usr/local/sbin/velociraptor", "/usr/local/sbin/velociraptor --config "
     "/etc/velociraptor.config.yaml client", "launchd", "root", 60, 50_000, "darwin"),
)

ANY4 = "0.0.0.0"  # noqa: S104 - an address in socket rows, nothing binds


def _procs(client: Client, key: str, ref: dt.datetime) -> list[dict[str, Any]]:
    rng = rng_for(key, "unixproc")
    boot = ts(min(client.boot_time, ref.timestamp() - 86400))
    mac = client.system == "darwin"
    rows: list[dict[str, Any]] = []
    pids: dict[str, int] = {}
    user = client.users[0] if client.users else "root"
    for name, exe, cmd, parent, owner, rss, exe_kb, where in _LINUX:
        if where not in ("all", client.system) and where != client.role:
            continue
        if mac and where == "linux":
            continue
        pid = 1 if name in ("systemd", "launchd") else (2 if name == "kthreadd" else
                                                        rng.randrange(300, 60_000))
        pids.setdefault(name, pid)
        created = boot + dt.timedelta(seconds=0 if pid == 1 else rng.uniform(1, 40))
        rows.append({
            "Pid": pid, "Ppid": pids.get(parent, 0) if parent else (0 if pid < 3 else 1),
            "Name": name, "CommandLine": cmd, "Exe": exe,
            "Hash": dict(file_hashes(content_key(client, exe), exe_kb * 1024)) if exe else None,
            "Username": user if owner == "USER" else owner, "CreateTime": created,
            "RSS": int(rss * 1048576 * rng.uniform(0.7, 1.3)), "Deleted": False,
        })
    for i in range(rng.randrange(2, 6)):  # kernel workers
        rows.append({"Pid": rng.randrange(3, 300), "Ppid": 2, "Name": f"kworker/{i}:1-events",
                     "CommandLine": "", "Exe": "", "Hash": None, "Username": "root",
                     "CreateTime": boot, "RSS": 0, "Deleted": False})
    if client.users and not mac:  # an admin's ssh session
        start = ref - dt.timedelta(hours=rng.uniform(1, 20))
        sshd = rng.randrange(60_000, 90_000)
        rows.append({"Pid": sshd, "Ppid": pids.get("sshd", 1), "Name": "sshd",
                     "CommandLine": f"sshd: {user}@pts/0", "Exe": "/usr/sbin/sshd",
                     "Hash": dict(file_hashes(content_key(client, "/usr/sbin/sshd"), 900 * 1024)),
                     "Username": user, "CreateTime": start, "RSS": 6_400_000, "Deleted": False})
        rows.append({"Pid": sshd + 1, "Ppid": sshd, "Name": "bash", "CommandLine": "-bash",
                     "Exe": "/usr/bin/bash",
                     "Hash": dict(file_hashes(content_key(client, "/usr/bin/bash"), 1_400_000)),
                     "Username": user, "CreateTime": start + dt.timedelta(seconds=1),
                     "RSS": 5_100_000, "Deleted": False})
    rows.sort(key=lambda r: r["Pid"])
    return rows


def unix_processes(client: Client, seed: int, now: dt.datetime) -> list[dict[str, Any]]:
    """Linux.Sys.Pslist rows before filtering (cached; copy before changing)."""
    ref = day_start(now)
    key = host_key(client, seed, ref)
    return cached(f"unixproc/{key}", lambda: _procs(client, key, ref))


_STATES = {"Listening": "0A", "Established": "01", "Time Wait": "06"}


def unix_sockets(client: Client, seed: int, now: dt.datetime) -> tuple[list[dict[str, Any]],
                                                                        list[dict[str, Any]]]:
    """Linux.Network.Netstat TCP4 and TCP6 rows before filtering."""
    rng = rng_for(host_key(client, seed, day_start(now)), "unixnet")
    procs: dict[str, dict[str, Any]] = {}
    for proc in unix_processes(client, seed, now):  # the daemon, not a later session
        if proc["Name"] not in procs or proc["Ppid"] in (0, 1):
            procs[proc["Name"]] = proc
    v4: list[dict[str, Any]] = []
    v6: list[dict[str, Any]] = []

    def sock(name: str, state: str, laddr: str, lport: int, raddr: str, rport: int,
             six: bool = False) -> None:
        proc = procs.get(name)
        inode = str(rng.randrange(10_000, 40_000_000))
        info = None
        if proc is not None:
            argv = proc["CommandLine"].split(" ")
            info = {"Pid": proc["Pid"], "Command": name[:15] + "\n",
                    "CommandLine": "\x00".join(argv) + "\x00", "Filename": f"socket:[{inode}]",
                    "Type": "socket", "Inode": inode}
        row = {"inode": inode, "State": state, "uid": "0" if proc is None or
               proc["Username"] == "root" else str(rng.randrange(100, 1100)),
               "ProcessInfo": info, "LocalAddr": laddr, "LocalPort": lport, "RemoteAddr": raddr,
               "RemotePort": rport}
        (v6 if six else v4).append({"Type": "TCP6", **row} if six else row)

    sock("sshd", "Listening", ANY4, 22, ANY4, 0)
    sock("sshd", "Listening", "::", 22, "::", 0, six=True)
    sock("systemd-resolve", "Listening", "127.0.0.53", 53, ANY4, 0)
    sock("velociraptor", "Established", client.ip, rng.randrange(40_000, 60_000), *VELO_SERVER)
    if client.role == "web":
        sock("nginx", "Listening", ANY4, 80, ANY4, 0)
        sock("nginx", "Listening", ANY4, 443, ANY4, 0)
        sock("gunicorn", "Listening", "127.0.0.1", 8080, ANY4, 0)
        for _ in range(rng.randrange(5, 20)):
            sock("nginx", rng.choice(["Established"] * 3 + ["Time Wait"]), client.ip, 443,
                 f"198.51.100.{rng.randrange(2, 250)}", rng.randrange(1025, 65000))
    if client.role == "db":
        sock("postgres", "Listening", ANY4, 5432, ANY4, 0)
        for _ in range(rng.randrange(3, 9)):
            sock("postgres", "Established", client.ip, 5432, "10.10.1.40",
                 rng.randrange(30000, 60000))
    if client.role == "app":
        sock("java", "Listening", "::", 8443, "::", 0, six=True)
    if client.users:
        sock("sshd", "Established", client.ip, 22, "10.20.5.7", rng.randrange(50000, 65000))
    return v4, v6


def passwd(client: Client) -> list[dict[str, Any]]:
    """Linux.Sys.Users rows (all strings, as split_records gives them)."""
    rows = [("root", "root", "0", "0", "/root", "/bin/bash"),
            ("daemon", "daemon", "1", "1", "/usr/sbin", "/usr/sbin/nologin"),
            ("bin", "bin", "2", "2", "/bin", "/usr/sbin/nologin"),
            ("sys", "sys", "3", "3", "/dev", "/usr/sbin/nologin"),
            ("sync", "sync", "4", "65534", "/bin", "/bin/sync"),
            ("www-data", "www-data", "33", "33", "/var/www", "/usr/sbin/nologin"),
            ("nobody", "nobody", "65534", "65534", "/nonexistent", "/usr/sbin/nologin"),
            ("systemd-network", "systemd Network Management,,,", "998", "998", "/",
             "/usr/sbin/nologin"),
            ("messagebus", "", "101", "102", "/nonexistent", "/usr/sbin/nologin"),
            ("syslog", "", "102", "103", "/home/syslog", "/usr/sbin/nologin"),
            ("sshd", "", "105", "65534", "/run/sshd", "/usr/sbin/nologin")]
    if client.role == "db":
        rows.append(("postgres", "PostgreSQL Server", "26", "26", "/var/lib/pgsql", "/bin/bash"))
    for i, user in enumerate(client.users):
        rows.append((user, f"{user},,,", str(1000 + i), str(1000 + i), f"/home/{user}",
                     "/bin/bash"))
    return [{"User": u, "Description": d, "Uid": uid, "Gid": gid, "Homedir": h, "Shell": s}
            for u, d, uid, gid, h, s in rows]


def mac_users(client: Client, seed: int) -> list[dict[str, Any]]:
    """MacOS.System.Users rows, system accounts included (shell /usr/bin/false)."""
    rng = rng_for(seed, client.client_id, "macusers")
    created = ts(client.first_seen_at) - dt.timedelta(days=30)
    rows = []
    accounts = [("root", "System Administrator", "0", "0", "/var/root", "/bin/sh"),
                ("daemon", "System Services", "1", "1", "/var/root", "/usr/bin/false"),
                ("_spotlight", "Spotlight", "89", "89", "/var/empty", "/usr/bin/false"),
                ("_windowserver", "WindowServer", "88", "88", "/var/empty", "/usr/bin/false"),
                ("nobody", "Unprivileged User", "-2", "-2", "/var/empty", "/usr/bin/false")]
    accounts += [(u, "Dana Harper" if u == "dharper" else u, str(501 + i), "20", f"/Users/{u}",
                  "/bin/zsh") for i, u in enumerate(client.users)]
    for name, real, uid, gid, home, shell in accounts:
        person = home.startswith("/Users/")
        rows.append({
            "Name": name, "RealName": real, "Uid": uid, "Gid": gid,
            "UUid": f"{rng.getrandbits(32):08X}-{rng.getrandbits(16):04X}-"
                    f"{rng.getrandbits(16):04X}-{rng.getrandbits(16):04X}-"
                    f"{rng.getrandbits(48):012X}",
            "UserShell": shell, "HomeDir": home,
            "AppleId": f"{name}@icloud.com" if person else None,
            "CreationTime": created if person else None,
            "FailedLoginCount": rng.randrange(0, 3) if person else None,
            "FailedLoginTimestamp": created + dt.timedelta(days=rng.uniform(1, 90))
            if person else None,
            "PasswordLastSetTime": created + dt.timedelta(days=rng.uniform(1, 120))
            if person else None,
        })
    return rows


_HISTORY = ("ls -la", "cd /var/log", "sudo tail -n 200 syslog", "df -h", "free -m", "top",
            "sudo systemctl status nginx", "sudo journalctl -u velociraptor --since today",
            "git pull", "ps aux | grep python", "ssh lnx-db-01", "sudo apt update",
            "sudo apt upgrade -y", "cat /etc/os-release", "history | tail",
            "sudo ss -tlnp", "du -sh /var/lib/* | sort -h", "vim /etc/nginx/sites-enabled/portal",
            "sudo nginx -t", "sudo systemctl reload nginx", "uptime", "exit")


def history_lines(client: Client, user: str, rng: random.Random) -> list[str]:
    """Plausible shell history of ``user`` on ``client``."""
    lines = [rng.choice(_HISTORY) for _ in range(rng.randrange(25, 90))]
    if client.role == "db":
        lines.insert(rng.randrange(len(lines)), "sudo -u postgres psql -c 'select count(*) from "
                     "pg_stat_activity'")
    if client.role == "bastion":
        lines.insert(rng.randrange(len(lines)), "curl -s https://ifconfig.me")
    return lines
