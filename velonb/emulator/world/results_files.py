"""Each host's file system (a few hundred entries), globbing, and the artifacts that read files."""

from __future__ import annotations

import datetime as dt
import re
import zlib
from dataclasses import dataclass, field
from typing import Any

from velonb.emulator.world.fleet import day_start
from velonb.emulator.world.incident import INCIDENT
from velonb.emulator.world.model import Client
from velonb.emulator.world.results_common import (
    cached,
    content_key,
    host_key,
    rng_for,
    ts,
)
from velonb.emulator.world.results_winproc import windows_state

_DOCS = {
    "finance": ("Q3_Forecast_v4.xlsx", "Vendor_Payments_Nov.xlsx", "AP_Aging_Report.pdf",
                "Budget_2027_draft.xlsx", "Wire_Approvals.docx", "Invoice_Template.dotx"),
    "hr": ("Onboarding_Checklist.docx", "Salary_Bands_2026.xlsx", "Policy_Handbook.pdf"),
    "": ("Meeting_Notes.docx", "Project_Plan.xlsx", "Architecture.pdf", "TODO.txt"),
}
_DOWNLOADS = ("ChromeSetup.exe", "Teams_windows_x64.msi", "statement_oct.pdf", "7z2408-x64.exe",
              "npp.8.7.1.Installer.x64.exe", "report (1).pdf")
_SYSTEM_FILES = ("cmd.exe", "notepad.exe", "rundll32.exe", "regsvr32.exe", "mshta.exe",
                 "certutil.exe", "bitsadmin.exe", "schtasks.exe", "net.exe", "whoami.exe",
                 "ntdll.dll", "kernel32.dll", "advapi32.dll", "user32.dll", "wininet.dll")
_PREFETCH_APPS = ("CMD.EXE", "POWERSHELL.EXE", "CHROME.EXE", "MSEDGE.EXE", "OUTLOOK.EXE",
                  "WINWORD.EXE", "EXCEL.EXE", "EXPLORER.EXE", "ONEDRIVE.EXE", "TEAMS.EXE",
                  "SVCHOST.EXE", "RUNDLL32.EXE", "CONHOST.EXE", "TASKHOSTW.EXE", "NOTEPAD.EXE",
                  "SEARCHPROTOCOLHOST.EXE", "BACKGROUNDTASKHOST.EXE", "MPCMDRUN.EXE",
                  "WERMGR.EXE", "DLLHOST.EXE", "SPPSVC.EXE", "CONSENT.EXE", "VELOCIRAPTOR.EXE")


@dataclass
class Entry:
    """One file or directory."""

    path: str  # native form: C:\\dir\\file or /dir/file
    size: int
    mtime: dt.datetime
    atime: dt.datetime
    ctime: dt.datetime
    btime: dt.datetime
    is_dir: bool = False
    inode: int = 0
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        """The last path component."""
        return re.split(r"[\\/]", self.path)[-1]


def _build(client: Client, seed: int, now: dt.datetime) -> list[Entry]:
    ref = day_start(now)
    rng = rng_for(host_key(client, seed, ref), "files")
    windows = client.system == "windows"
    sep = "\\" if windows else "/"
    installed = ts(client.first_seen_at) - dt.timedelta(days=rng.uniform(10, 120))
    entries: dict[str, Entry] = {}

    def add(path: str, size: int, when: dt.datetime, is_dir: bool = False,
            **meta: Any) -> Entry:
        parts = path.split(sep)
        for i in range(1, len(parts)):  # parents
            parent = sep.join(parts[:i]) or sep
            if windows and i == 1:
                parent += "\\"
            if parent not in entries:
                entries[parent] = Entry(parent, 0, when, when, when, when, True,
                                        rng.randrange(30, 900_000))
        access = min(ref, when + dt.timedelta(hours=rng.uniform(0, 400)))
        entry = Entry(path, size, when, access, when, when - dt.timedelta(
            seconds=rng.uniform(0, 5)), is_dir, rng.randrange(30, 900_000), dict(meta))
        entries[path] = entry
        return entry

    def recent(days: float) -> dt.datetime:
        return ref - dt.timedelta(seconds=rng.uniform(600, days * 86400))

    if windows:
        procs, _ = windows_state(client, seed, now)
        for p in procs:
            if p.exe and p.exe not in entries and p.exe.lower() != INCIDENT.binary_path.lower():
                add(p.exe, p.exe_size, installed)
        for name in _SYSTEM_FILES:
            add(f"C:\\Windows\\System32\\{name}", 20_000 + zlib.crc32(name.encode()) % 900_000,
                installed)
        for user in client.users or ["adm-kpatel"]:
            home = f"C:\\Users\\{user}"
            group = next((g for g in ("finance", "hr") if g in client.labels), "")
            for doc in _DOCS[group]:
                add(f"{home}\\Documents\\{doc}", rng.randrange(14_000, 900_000), recent(60))
            for name in rng.sample(_DOWNLOADS, 4):
                add(f"{home}\\Downloads\\{name}", rng.randrange(200_000, 2_500_000), recent(90))
            add(f"{home}\\Desktop\\Shared Finance (S).lnk", 1_214, recent(200))
            add(f"{home}\\AppData\\Local\\Temp\\{rng.getrandbits(32):08x}.tmp",
                rng.randrange(100, 40_000), recent(3))
            add(f"{home}\\AppData\\Roaming\\Microsoft\\Windows\\Recent\\"
                f"{_DOCS[group][0]}.lnk", 1_020, recent(5))
            add(f"{home}\\NTUSER.DAT", 2_359_296, recent(1))
        if client.role == "fileserver":
            for dept in ("Finance", "HR", "Engineering", "Public"):
                for i in range(rng.randrange(8, 20)):
                    add(f"D:\\Shares\\{dept}\\{dept.lower()}_{2024 + i % 3}_{i:03d}."
                        f"{rng.choice(['xlsx', 'docx', 'pdf'])}", rng.randrange(10_000, 2_000_000),
                        recent(400))
        if client.role == "web":
            for name in ("iisstart.htm", "web.config", "default.aspx", "login.aspx"):
                add(f"C:\\inetpub\\wwwroot\\{name}", rng.randrange(700, 9_000), installed)
        _plant_files(client, ref, add, rng)
        if client.role == "workstation":
            _prefetch_files(client, ref, rng, add)
    else:
        _unix_files(client, ref, rng, add, recent, installed)
    return sorted(entries.values(), key=lambda e: e.path.lower())


def _plant_files(client: Client, ref: dt.datetime, add: Any, rng: Any) -> None:
    inc = INCIDENT
    if client.hostname == inc.patient_zero:
        add(inc.document, 48_640, inc.at("initial_access", ref) - dt.timedelta(seconds=21))
    if client.hostname in inc.compromised_hosts:
        step = {"WKS-FIN-0042": "drop", "SRV-FS-01": "persistence_service"}.get(
            client.hostname, "persistence_wmi_2")
        when = inc.at(step, ref) + dt.timedelta(seconds=0.42) if step == "drop" else \
            inc.at(step, ref) - dt.timedelta(seconds=rng.uniform(3, 40))
        add(inc.binary_path, inc.binary_size, when)


def _pf_hash(path: str) -> int:
    return zlib.crc32(path.upper().encode("utf-16-le"))


def _prefetch_files(client: Client, ref: dt.datetime, rng: Any, add: Any) -> None:
    volume = f"\\VOLUME{{01d{rng.getrandbits(52):013x}-{rng.getrandbits(32):08x}}}"
    apps = [(a, "") for a in _PREFETCH_APPS]
    if client.hostname in INCIDENT.compromised_hosts:
        apps.append((INCIDENT.binary_name.upper(), "evil"))
    for exe, kind in apps:
        if kind == "evil":
            dos = INCIDENT.binary_path.upper()
            step = "beacon" if client.hostname == INCIDENT.patient_zero else "beacon_2"
            first = INCIDENT.at(step, ref)
            runs = [first]
            if client.hostname == INCIDENT.patient_zero:
                runs.append(INCIDENT.at("persistence_wmi", ref) + dt.timedelta(minutes=4))
        else:
            folder = {"CHROME.EXE": "PROGRAM FILES\\GOOGLE\\CHROME\\APPLICATION",
                      "OUTLOOK.EXE": "PROGRAM FILES\\MICROSOFT OFFICE\\ROOT\\OFFICE16",
                      "WINWORD.EXE": "PROGRAM FILES\\MICROSOFT OFFICE\\ROOT\\OFFICE16",
                      "EXCEL.EXE": "PROGRAM FILES\\MICROSOFT OFFICE\\ROOT\\OFFICE16",
                      "EXPLORER.EXE": "WINDOWS",
                      "VELOCIRAPTOR.EXE": "PROGRAM FILES\\VELOCIRAPTOR"}.get(
                exe, "WINDOWS\\SYSTEM32")
            dos = f"C:\\{folder}\\{exe}"
            count = rng.randrange(1, 9)
            runs = sorted(ref - dt.timedelta(seconds=rng.uniform(300, 30 * 86400))
                          for _ in range(count))
        planted = {"WINWORD.EXE": "initial_access", "CMD.EXE": "execution",
                   "POWERSHELL.EXE": "powershell"}
        if exe in planted and client.hostname == INCIDENT.patient_zero:
            runs = sorted([*runs, INCIDENT.at(planted[exe], ref)])
        runs = sorted(runs, reverse=True)
        run_count = len(runs) + (rng.randrange(0, 300) if kind == "" else 0)
        device = volume + dos[2:]
        pf_hash = _pf_hash(device)
        name = f"{exe}-{pf_hash:08X}.pf"
        add(f"C:\\Windows\\Prefetch\\{name}", rng.randrange(3_000, 90_000),
            runs[0] + dt.timedelta(seconds=10), pf={
                "Executable": exe, "Hash": pf_hash, "LastRunTimes": runs[:8],
                "RunCount": run_count, "ExecutablePath": device, "ExecutableDosPath": dos,
                "Created": runs[-1] + dt.timedelta(seconds=10), "Volume": volume})


def _unix_files(client: Client, ref: dt.datetime, rng: Any, add: Any, recent: Any,
                installed: dt.datetime) -> None:
    from velonb.emulator.world.results_unix import history_lines

    mac = client.system == "darwin"
    home = "/Users" if mac else "/home"
    for user in client.users:
        lines = history_lines(client, user, rng)
        add(f"{home}/{user}/.bash_history" if not mac else f"{home}/{user}/.zsh_history",
            sum(len(x) + 1 for x in lines), recent(2), lines=lines)
        add(f"{home}/{user}/.bashrc", 3_771, installed)
        add(f"{home}/{user}/.profile", 807, installed)
    if not mac:
        lines = history_lines(client, "root", rng)
        add("/root/.bash_history", sum(len(x) + 1 for x in lines), recent(6), lines=lines)
        add("/root/.bashrc", 3_106, installed)
        for name in ("passwd", "group", "hosts", "ssh/sshd_config", "crontab"):
            add(f"/etc/{name}", rng.randrange(200, 4_000), installed)
        for name in ("bash", "ls", "ssh", "curl", "python3"):
            add(f"/usr/bin/{name}", rng.randrange(100_000, 6_000_000), installed)


def host_files(client: Client, seed: int, now: dt.datetime) -> list[Entry]:
    """The host's file entries on ``now``'s day (cached; treat as read-only)."""
    key = host_key(client, seed, day_start(now))
    return cached(f"files/{key}", lambda: _build(client, seed, now))


def glob_regex(pattern: str, windows: bool) -> re.Pattern[str] | None:
    """A Velociraptor glob (``*``, ``?``, ``**``, ``{a,b}``) as a regex over '/'-paths."""
    pattern = pattern.strip()
    if not pattern:
        return None
    if windows:
        pattern = pattern.replace("\\", "/")
    out, i = [], 0
    while i < len(pattern):
        c = pattern[i]
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
            continue
        if pattern.startswith("**", i):
            out.append(".*")
            i += 2
            continue
        if c == "*":
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "{":
            end = pattern.find("}", i)
            if end < 0:
                out.append(re.escape(c))
            else:
                alts = pattern[i + 1:end].split(",")
                out.append("(?:" + "|".join(re.escape(a) for a in alts) + ")")
                i = end + 1
                continue
        else:
            out.append(re.escape(c))
        i += 1
    return re.compile("".join(out) + "$", re.IGNORECASE if windows else 0)


def glob(entries: list[Entry], patterns: list[str], windows: bool) -> list[Entry]:
    """Entries matching any of ``patterns`` (each entry once, in path order)."""
    regexes = [r for r in (glob_regex(p, windows) for p in patterns) if r is not None]
    found = []
    for entry in entries:
        path = entry.path.replace("\\", "/") if windows else entry.path
        if path.endswith("/") and len(path) > 1:
            path = path[:-1]
        if any(r.match(path) for r in regexes):
            found.append(entry)
    return found


def entry_key(client: Client, entry: Entry) -> str:
    """The content key of a file entry."""
    return content_key(client, entry.path)
