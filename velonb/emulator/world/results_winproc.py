"""A Windows host's processes and sockets (the state behind Pslist, Netstat and Prefetch)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from velonb.emulator.world.fleet import DOMAIN, NETBIOS, day_start
from velonb.emulator.world.incident import INCIDENT
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

DOMAIN_SID = "S-1-5-21-2877340193-1830157112-4183626001"
_S32 = "C:\\Windows\\System32\\"
_OFFICE = "C:\\Program Files\\Microsoft Office\\root\\Office16\\"
_ACCOUNTS = {"SYSTEM": ("NT AUTHORITY\\SYSTEM", "S-1-5-18"),
             "LS": ("NT AUTHORITY\\LOCAL SERVICE", "S-1-5-19"),
             "NS": ("NT AUTHORITY\\NETWORK SERVICE", "S-1-5-20"),
             "DWM": ("Window Manager\\DWM-1", "S-1-5-90-0-1"),
             "UMFD": ("Font Driver Host\\UMFD-1", "S-1-5-96-0-1"),
             "IIS": ("IIS APPPOOL\\DefaultAppPool", "S-1-5-82-3006700770-424185619-1745488364"),
             "SQL": ("NT Service\\MSSQLSERVER", "S-1-5-80-3880718306-3832830129-1677859214"),
             "SQLAGENT": ("NT Service\\SQLSERVERAGENT", "S-1-5-80-344959196-2060754871-2302487193")}
_PROTECTED = {"System", "Registry", "smss.exe", "csrss.exe", "wininit.exe", "services.exe",
              "lsass.exe", "MsMpEng.exe", "NisSrv.exe", "Memory Compression"}

# name, exe, arguments, parent, account, elevated, working set MB, exe KB, signer, where
_P = tuple[str, str, str, str, str, bool, int, int, str, str]
_BASE: tuple[_P, ...] = (
    ("System", "", "", "", "SYSTEM", True, 1, 0, "", "all"),
    ("Registry", "", "", "System", "SYSTEM", True, 60, 0, "", "all"),
    ("smss.exe", _S32 + "smss.exe", "\\SystemRoot\\System32\\smss.exe", "System", "SYSTEM",
     True, 1, 156, "ms", "all"),
    ("Memory Compression", "", "", "System", "SYSTEM", True, 300, 0, "", "all"),
    ("csrss.exe", _S32 + "csrss.exe", "%SystemRoot%\\system32\\csrss.exe ObjectDirectory=\\Windows",
     "-", "SYSTEM", True, 5, 19, "ms", "all"),
    ("wininit.exe", _S32 + "wininit.exe", "wininit.exe", "-", "SYSTEM", True, 7, 444, "ms", "all"),
    ("winlogon.exe", _S32 + "winlogon.exe", "winlogon.exe", "-", "SYSTEM", True, 11, 891, "ms",
     "all"),
    ("services.exe", _S32 + "services.exe", "C:\\Windows\\system32\\services.exe", "wininit.exe",
     "SYSTEM", True, 12, 719, "ms", "all"),
    ("lsass.exe", _S32 + "lsass.exe", "C:\\Windows\\system32\\lsass.exe", "wininit.exe", "SYSTEM",
     True, 28, 84, "ms", "all"),
    ("svchost.exe", _S32 + "svchost.exe", "C:\\Windows\\system32\\svchost.exe -k DcomLaunch -p",
     "services.exe", "SYSTEM", True, 30, 55, "ms", "all"),
    ("svchost.exe", _S32 + "svchost.exe", "C:\\Windows\\system32\\svchost.exe -k RPCSS -p",
     "services.exe", "NS", False, 14, 55, "ms", "all"),
    ("svchost.exe", _S32 + "svchost.exe",
     "C:\\Windows\\system32\\svchost.exe -k LocalServiceNetworkRestricted -p", "services.exe",
     "LS", False, 22, 55, "ms", "all"),
    ("svchost.exe", _S32 + "svchost.exe", "C:\\Windows\\system32\\svchost.exe -k netsvcs -p",
     "services.exe", "SYSTEM", True, 70, 55, "ms", "all"),
    ("svchost.exe", _S32 + "svchost.exe",
     "C:\\Windows\\System32\\svchost.exe -k NetworkService -p", "services.exe", "NS", False, 18,
     55, "ms", "all"),
    ("svchost.exe", _S32 + "svchost.exe", "C:\\Windows\\system32\\svchost.exe -k LocalService -p",
     "services.exe", "LS", False, 16, 55, "ms", "all"),
    ("svchost.exe", _S32 + "svchost.exe",
     "C:\\Windows\\System32\\svchost.exe -k LocalSystemNetworkRestricted -p", "services.exe",
     "SYSTEM", True, 25, 55, "ms", "all"),
    ("svchost.exe", _S32 + "svchost.exe", "C:\\Windows\\System32\\svchost.exe -k termsvcs -s "
     "TermService", "services.exe", "NS", False, 20, 55, "ms", "all"),
    ("svchost.exe", _S32 + "svchost.exe", "C:\\Windows\\system32\\svchost.exe -k appmodel -p -s "
     "StateRepository", "services.exe", "SYSTEM", True, 24, 55, "ms", "ws"),
    ("svchost.exe", _S32 + "svchost.exe", "C:\\Windows\\system32\\svchost.exe -k UnistackSvcGroup",
     "services.exe", "USER", False, 15, 55, "ms", "ws"),
    ("spoolsv.exe", _S32 + "spoolsv.exe", "C:\\Windows\\System32\\spoolsv.exe", "services.exe",
     "SYSTEM", True, 14, 915, "ms", "all"),
    ("MsMpEng.exe", "C:\\ProgramData\\Microsoft\\Windows Defender\\Platform\\4.18.24090.11-0\\"
     "MsMpEng.exe", "", "services.exe", "SYSTEM", True, 210, 133, "msc", "all"),
    ("NisSrv.exe", "C:\\ProgramData\\Microsoft\\Windows Defender\\Platform\\4.18.24090.11-0\\"
     "NisSrv.exe", "", "services.exe", "LS", False, 9, 3117, "msc", "all"),
    ("WmiPrvSE.exe", _S32 + "wbem\\WmiPrvSE.exe",
     "C:\\Windows\\system32\\wbem\\wmiprvse.exe -secured -Embedding", "svchost.exe", "SYSTEM",
     True, 19, 496, "ms", "all"),
    ("WmiPrvSE.exe", _S32 + "wbem\\WmiPrvSE.exe", "C:\\Windows\\system32\\wbem\\wmiprvse.exe",
     "svchost.exe", "NS", False, 12, 496, "ms", "all"),
    ("Velociraptor.exe", "C:\\Program Files\\Velociraptor\\Velociraptor.exe",
     "\"C:\\Program Files\\Velociraptor\\Velociraptor.exe\" --config "
     "\"C:\\Program Files\\Velociraptor\\client.config.yaml\" service run", "services.exe",
     "SYSTEM", True, 62, 55120, "velo", "all"),
    ("vmtoolsd.exe", "C:\\Program Files\\VMware\\VMware Tools\\vmtoolsd.exe",
     "\"C:\\Program Files\\VMware\\VMware Tools\\vmtoolsd.exe\"", "services.exe", "SYSTEM", True,
     25, 102, "vmware", "srv"),
    ("dwm.exe", _S32 + "dwm.exe", "\"dwm.exe\"", "winlogon.exe", "DWM", False, 90, 118, "ms",
     "all"),
    ("fontdrvhost.exe", _S32 + "fontdrvhost.exe", "\"fontdrvhost.exe\"", "winlogon.exe", "UMFD",
     False, 4, 845, "ms", "all"),
    ("SearchIndexer.exe", _S32 + "SearchIndexer.exe", "C:\\Windows\\system32\\SearchIndexer.exe "
     "/Embedding", "services.exe", "SYSTEM", True, 40, 993, "ms", "ws"),
    ("dns.exe", _S32 + "dns.exe", "C:\\Windows\\system32\\dns.exe", "services.exe", "SYSTEM", True,
     120, 2771, "ms", "dc"),
    ("dfsrs.exe", _S32 + "dfsrs.exe", "C:\\Windows\\system32\\DFSRs.exe", "services.exe", "SYSTEM",
     True, 45, 3410, "ms", "dc"),
    ("ismserv.exe", _S32 + "ismserv.exe", "C:\\Windows\\System32\\ismserv.exe", "services.exe",
     "SYSTEM", True, 6, 101, "ms", "dc"),
    ("Microsoft.ActiveDirectory.WebServices.exe", "C:\\Windows\\ADWS\\"
     "Microsoft.ActiveDirectory.WebServices.exe", "C:\\Windows\\ADWS\\"
     "Microsoft.ActiveDirectory.WebServices.exe", "services.exe", "SYSTEM", True, 60, 462, "msc",
     "dc"),
    ("w3wp.exe", "C:\\Windows\\System32\\inetsrv\\w3wp.exe", "c:\\windows\\system32\\inetsrv\\"
     "w3wp.exe -ap \"DefaultAppPool\" -v \"v4.0\" -l \"webengine4.dll\" -a "
     "\\\\.\\pipe\\iisipm5c1e -h \"C:\\inetpub\\temp\\apppools\\DefaultAppPool\\"
     "DefaultAppPool.config\" -w \"\" -m 0 -t 20 -ta 0", "svchost.exe", "IIS", False, 310, 31,
     "ms", "web"),
    ("sqlservr.exe", "C:\\Program Files\\Microsoft SQL Server\\MSSQL16.MSSQLSERVER\\MSSQL\\Binn\\"
     "sqlservr.exe", "\"C:\\Program Files\\Microsoft SQL Server\\MSSQL16.MSSQLSERVER\\MSSQL\\Binn\\"
     "sqlservr.exe\" -sMSSQLSERVER", "services.exe", "SQL", False, 4100, 486, "msc", "sql"),
    ("SQLAGENT.EXE", "C:\\Program Files\\Microsoft SQL Server\\MSSQL16.MSSQLSERVER\\MSSQL\\Binn\\"
     "SQLAGENT.EXE", "\"C:\\Program Files\\Microsoft SQL Server\\MSSQL16.MSSQLSERVER\\MSSQL\\Binn\\"
     "SQLAGENT.EXE\" -i MSSQLSERVER", "services.exe", "SQLAGENT", False, 70, 759, "msc", "sql"),
    ("sihost.exe", _S32 + "sihost.exe", "sihost.exe", "svchost.exe", "USER", False, 28, 127, "ms",
     "user"),
    ("taskhostw.exe", _S32 + "taskhostw.exe", "taskhostw.exe {222A245B-E637-4AE9-A93F-"
     "A59CA119A75E}", "svchost.exe", "USER", False, 14, 101, "ms", "user"),
    ("explorer.exe", "C:\\Windows\\explorer.exe", "C:\\Windows\\Explorer.EXE", "-", "USER", False,
     160, 5376, "ms", "user"),
    ("ctfmon.exe", _S32 + "ctfmon.exe", "\"ctfmon.exe\"", "svchost.exe", "USER", False, 18, 17,
     "ms", "ws"),
    ("RuntimeBroker.exe", _S32 + "RuntimeBroker.exe", "C:\\Windows\\System32\\RuntimeBroker.exe "
     "-Embedding", "svchost.exe", "USER", False, 22, 142, "ms", "ws"),
    ("SecurityHealthSystray.exe", _S32 + "SecurityHealthSystray.exe", "\"C:\\Windows\\System32\\"
     "SecurityHealthSystray.exe\"", "explorer.exe", "USER", False, 9, 94, "ms", "ws"),
    ("OneDrive.exe", "C:\\Program Files\\Microsoft OneDrive\\OneDrive.exe", "\"C:\\Program Files\\"
     "Microsoft OneDrive\\OneDrive.exe\" /background", "explorer.exe", "USER", False, 95, 3420,
     "msc", "ws"),
    ("OUTLOOK.EXE", _OFFICE + "OUTLOOK.EXE", f"\"{_OFFICE}OUTLOOK.EXE\" ", "explorer.exe", "USER",
     False, 380, 43008, "msc", "ws"),
    ("ms-teams.exe", "C:\\Program Files\\WindowsApps\\MSTeams_24295.605.3225.8804_x64__"
     "8wekyb3d8bbwe\\ms-teams.exe", "\"C:\\Program Files\\WindowsApps\\"
     "MSTeams_24295.605.3225.8804_x64__8wekyb3d8bbwe\\ms-teams.exe\" msteams:system-initiated",
     "explorer.exe", "USER", False, 240, 1120, "msc", "ws"),
    ("msedge.exe", "C:\\Program Files (x86)\\Microsoft\\Edge\\Application\\msedge.exe",
     "\"C:\\Program Files (x86)\\Microsoft\\Edge\\Application\\msedge.exe\" --no-startup-window "
     "--win-session-start", "explorer.exe", "USER", False, 120, 4023, "msc", "ws"),
    ("chrome.exe", "C:\\Program Files\\Google\\Chrome\\Application\\chrome.exe",
     "\"C:\\Program Files\\Google\\Chrome\\Application\\chrome.exe\"", "explorer.exe", "USER",
     False, 210, 3171, "google", "ws"),
)
_CHROME_KIDS = ("--type=gpu-process", "--type=utility --utility-sub-type=network.mojom."
                "NetworkService", "--type=renderer --renderer-client-id=7", "--type=renderer "
                "--renderer-client-id=12", "--type=renderer --renderer-client-id=31")

ANY4 = "0.0.0.0"  # noqa: S104 - an address in socket rows, nothing binds


@dataclass
class Proc:
    """One running Windows process."""

    pid: int
    ppid: int
    name: str
    exe: str
    cmdline: str
    user: str
    sid: str
    create: dt.datetime
    elevated: bool
    working_set: int
    exe_size: int
    signer: str


@dataclass
class Conn:
    """One socket."""

    pid: int
    family: str
    type: str
    status: str
    laddr: str
    lport: int
    raddr: str
    rport: int
    created: dt.datetime


def netbios(client: Client) -> str:
    """The NetBIOS domain name of the client's domain."""
    return NETBIOS if client.domain == DOMAIN else "HARBORLINE"


def user_sid(user: str) -> str:
    """A stable domain SID for ``user``."""
    return f"{DOMAIN_SID}-{1100 + sum(map(ord, user)) * 7 % 3900}"


def _where_ok(where: str, client: Client) -> bool:
    server = client.role not in ("workstation", "laptop")
    return where == "all" or (where == "ws" and not server) or (where == "srv" and server) or \
        where == "user" or where == client.role


def _windows_state(client: Client, key: str, ref: dt.datetime) -> tuple[list[Proc], list[Conn]]:
    rng = rng_for(key, "winproc")
    boot = ts(min(client.boot_time, ref.timestamp() - 86400))
    main_user = client.users[0] if client.users else ""
    interactive = main_user or "adm-kpatel"
    used: set[int] = {0, 4}

    def pid() -> int:
        while True:
            p = rng.randrange(100, 16000) * 4
            if p not in used:
                used.add(p)
                return p

    procs: list[Proc] = []
    by_name: dict[str, Proc] = {}

    def add(name: str, exe: str, cmd: str, parent: str | int, account: str, elevated: bool,
            ws_mb: float, exe_kb: int, signer: str, created: dt.datetime) -> Proc:
        if account.startswith("USER:"):
            user, sid = f"{netbios(client)}\\{account[5:]}", user_sid(account[5:])
        else:
            user, sid = _ACCOUNTS[account]
        if isinstance(parent, int) and parent >= 0:
            ppid = parent
        else:
            ppid = by_name[parent].pid if parent in by_name else rng.randrange(100, 2000) * 4
        proc = Proc(4 if name == "System" else pid(), 0 if name == "System" else ppid, name, exe,
                    cmd, user, sid, created, elevated,
                    int(ws_mb * 1048576 * rng.uniform(0.7, 1.4)), exe_kb * 1024, signer)
        procs.append(proc)
        by_name.setdefault(name, proc)
        return proc

    logon = boot + dt.timedelta(minutes=rng.uniform(2, 600))
    for name, exe, cmd, parent, account, elevated, ws_mb, exe_kb, signer, where in _BASE:
        if not _where_ok(where, client):
            continue
        acct = f"USER:{interactive}" if account == "USER" else account
        if where == "user":
            created = logon + dt.timedelta(seconds=rng.uniform(1, 30))
        elif where == "ws" and account == "USER":
            created = logon + dt.timedelta(seconds=rng.uniform(20, 3 * 3600))
        else:
            created = boot + dt.timedelta(seconds=rng.uniform(0.5, 90 if account != "USER" else 9))
        add(name, exe, cmd, parent, acct, elevated, ws_mb, exe_kb, signer, created)
        if name == "chrome.exe":
            for extra in _CHROME_KIDS:
                add(name, exe, f"{cmd} {extra}", procs[-1].pid if extra else parent, acct, False,
                    ws_mb / 2, exe_kb, signer, created + dt.timedelta(seconds=rng.uniform(1, 60)))
        if name == "svchost.exe" and rng.random() < 0.3:
            add("conhost.exe", _S32 + "conhost.exe", "\\??\\C:\\Windows\\system32\\conhost.exe "
                "0xffffffff -ForceV1", procs[-1].pid, acct, elevated, 6, 862, "ms", created)
    for _ in range(rng.randrange(3, 9)):  # transient work: more svchost/conhost noise
        add("svchost.exe", _S32 + "svchost.exe", "C:\\Windows\\system32\\svchost.exe -k "
            f"{rng.choice(['netsvcs', 'LocalServiceNoNetwork', 'wsappx', 'NetSvcs -p -s BITS'])}",
            "services.exe", rng.choice(["SYSTEM", "LS", "NS"]), False, 8, 55, "ms",
            boot + dt.timedelta(hours=rng.uniform(0, 48)))
    _plant(client, ref, add, by_name, procs)
    conns = _sockets(client, ref, rng, procs, boot)
    return procs, conns


def _plant(client: Client, ref: dt.datetime, add: Any, by_name: dict[str, Proc],
           procs: list[Proc]) -> None:
    """Add the incident's processes on the hosts where they run."""
    inc = INCIDENT
    host = client.hostname
    when = {k: ref - dt.timedelta(days=inc.days_ago) + s.offset for k, s in
            ((s.key, s) for s in inc.steps)}
    implant_kb = inc.binary_size // 1024
    for logon in inc.rdp_logons:
        if logon.target_host == host:  # the attacker's disconnected RDP session
            acct = f"USER:{logon.user}"
            t = when[logon.step] + dt.timedelta(seconds=25)
            shell = add("explorer.exe", "C:\\Windows\\explorer.exe", "C:\\Windows\\Explorer.EXE",
                        -1, acct, False, 70, 5376, "ms", t)
            add("rdpclip.exe", "C:\\Windows\\System32\\rdpclip.exe", "rdpclip", -1, acct, False,
                8, 1020, "ms", t - dt.timedelta(seconds=3))
            del shell
    if host == inc.patient_zero:
        parent = next(p for p in procs if p.name == "explorer.exe")
        acct = f"USER:{inc.user}"
        word = add("WINWORD.EXE", inc.word_exe, inc.word_cmdline, parent.pid, acct, False, 180,
                   1660, "msc", when["initial_access"])
        cmd = add("cmd.exe", "C:\\Windows\\System32\\cmd.exe", inc.cmd_cmdline, word.pid, acct,
                  False, 4, 323, "ms", when["execution"])
        add("conhost.exe", _S32 + "conhost.exe", "\\??\\C:\\Windows\\system32\\conhost.exe "
            "0xffffffff -ForceV1", cmd.pid, acct, False, 6, 862, "ms", when["execution"])
        ps = add("powershell.exe", _S32 + "WindowsPowerShell\\v1.0\\powershell.exe",
                 inc.powershell_cmdline, cmd.pid, acct, False, 95, 444, "ms", when["powershell"])
        add(inc.binary_name, inc.binary_path, f"\"{inc.binary_path}\" -k netsvc", ps.pid, acct,
            False, 14, implant_kb, "", when["beacon"])
    elif host in inc.wmi_hosts:
        wmi = by_name["WmiPrvSE.exe"]
        add(inc.binary_name, inc.binary_path, inc.wmi_command, wmi.pid, "SYSTEM", True, 14,
            implant_kb, "", when["beacon_2"])
    elif host in inc.service_hosts:
        add(inc.binary_name, inc.binary_path, inc.service_command, by_name["services.exe"].pid,
            "SYSTEM", True, 14, implant_kb, "",
            when["persistence_service"] + dt.timedelta(seconds=2))


def _sockets(client: Client, ref: dt.datetime, rng: Any, procs: list[Proc],
             boot: dt.datetime) -> list[Conn]:
    conns: list[Conn] = []
    first: dict[str, Proc] = {}
    for p in procs:
        first.setdefault(p.name, p)
    sv = [p for p in procs if p.name == "svchost.exe"]

    def listen(name: str | Proc, port: int, addr: str = ANY4, kind: str = "TCP") -> None:
        proc = name if isinstance(name, Proc) else first.get(name)
        if proc is None:
            return
        status = "LISTEN" if kind == "TCP" else ""
        conns.append(Conn(proc.pid, "IPv6" if ":" in addr else "IPv4", kind, status, addr, port,
                          "::" if ":" in addr else ANY4, 0, proc.create))

    def out(name: str | Proc, raddr: str, rport: int, status: str = "ESTAB") -> None:
        proc = name if isinstance(name, Proc) else first.get(name)
        if proc is None:
            return
        when = max(proc.create, ref - dt.timedelta(hours=rng.uniform(0.1, 20)))
        conns.append(Conn(proc.pid, "IPv4", "TCP", status, client.ip, rng.randrange(49700, 65500),
                          raddr, rport, when))

    listen(sv[1] if len(sv) > 1 else "svchost.exe", 135)
    listen(sv[1] if len(sv) > 1 else "svchost.exe", 135, "::")
    listen("System", 445)
    listen("System", 445, "::")
    listen("System", 139, client.ip)
    for port, name in ((49664, "lsass.exe"), (49665, "wininit.exe"), (49666, "svchost.exe"),
                       (49667, "svchost.exe"), (49668, "spoolsv.exe"), (49669, "services.exe")):
        listen(name, port)
    listen("System", 137, client.ip, "UDP")
    listen("System", 138, client.ip, "UDP")
    listen(sv[-1], 123, ANY4, "UDP")
    listen(sv[3] if len(sv) > 3 else sv[0], 5353, ANY4, "UDP")
    listen(sv[4] if len(sv) > 4 else sv[0], 5355, ANY4, "UDP")
    server = client.role not in ("workstation", "laptop")
    if server or (client.role == "workstation" and "it" in client.labels):
        listen(next(p for p in sv if "termsvcs" in p.cmdline), 3389)
    if server:
        listen("System", 5985)
    if client.role == "dc":
        for port in (88, 389, 464, 636, 3268, 3269):
            listen("lsass.exe", port)
        listen("dns.exe", 53)
        listen("dns.exe", 53, client.ip, "UDP")
        listen("Microsoft.ActiveDirectory.WebServices.exe", 9389)
        for _ in range(rng.randrange(10, 25)):
            peer = f"10.20.{rng.choice([1, 2, 3, 5])}.{rng.randrange(10, 200)}"
            conns.append(Conn(first["lsass.exe"].pid, "IPv4", "TCP", "ESTAB", client.ip,
                              rng.choice([389, 88, 135, 49664]), peer, rng.randrange(49700, 65500),
                              ref - dt.timedelta(minutes=rng.uniform(1, 600))))
    if client.role == "web":
        listen("System", 80)
        listen("System", 443)
    if client.role == "sql":
        listen("sqlservr.exe", 1433)
        for _ in range(rng.randrange(4, 12)):
            out("sqlservr.exe", "10.10.0.30", rng.randrange(49700, 65500))
    out("Velociraptor.exe", *VELO_SERVER)
    dc = "10.10.0.10" if client.domain == DOMAIN else "172.16.20.2"
    for port in (389, 445, 135):
        if client.role != "dc":
            out("svchost.exe", dc, port)
    if not server:
        out("System", "10.10.0.20", 445)
        for name, nets in (("chrome.exe", ("142.250.181.", "172.217.16.", "151.101.1.")),
                           ("msedge.exe", ("13.107.21.", "204.79.197.")),
                           ("OUTLOOK.EXE", ("52.97.146.", "40.99.10.")),
                           ("ms-teams.exe", ("52.112.100.", "52.113.194.")),
                           ("OneDrive.exe", ("13.107.42.",))):
            for _ in range(rng.randrange(1, 6)):
                procs_named = [p for p in procs if p.name == name]
                if procs_named:
                    out(rng.choice(procs_named), rng.choice(nets) + str(rng.randrange(2, 250)),
                        443, rng.choice(["ESTAB"] * 5 + ["TIME_WAIT", "CLOSE_WAIT"]))
    else:
        out("svchost.exe", "20.190.160." + str(rng.randrange(2, 60)), 443)
    for proc in procs:
        if proc.exe.lower() == INCIDENT.binary_path.lower():
            conns.append(Conn(proc.pid, "IPv4", "TCP", "ESTAB", client.ip,
                              rng.randrange(49700, 65500), INCIDENT.beacon_ip, INCIDENT.beacon_port,
                              max(proc.create, ref - dt.timedelta(minutes=rng.uniform(1, 50)))))
    return conns


def windows_state(client: Client, seed: int, now: dt.datetime) -> tuple[list[Proc], list[Conn]]:
    """The host's processes and sockets on ``now``'s day (cached; treat as read-only)."""
    ref = day_start(now)
    key = host_key(client, seed, ref)
    return cached(f"winproc/{key}", lambda: _windows_state(client, key, ref))


_SIGNERS = {
    "ms": ("Microsoft Windows", "http://www.microsoft.com/windows",
           "33000004a7e1d6c7b2f2ab2e6e0000000004a7", "Microsoft Windows Production PCA 2011",
           "Microsoft Windows"),
    "msc": ("Microsoft Corporation", "http://www.microsoft.com", "330000038b5a0e6d42f3f0f3b1000000"
            "00038b", "Microsoft Code Signing PCA 2011", "Microsoft Corporation"),
    "google": ("Google Chrome", "http://www.google.com", "0e4418e2dede36dd2974c3443afb5ce5",
               "DigiCert Trusted G4 Code Signing RSA4096 SHA384 2021 CA1", "Google LLC"),
    "velo": ("Velociraptor", "https://docs.velociraptor.app/", "0a3f6ab1dc27bcb2d6a4c59eb5a4b9c1",
             "DigiCert Trusted G4 Code Signing RSA4096 SHA384 2021 CA1", "Rapid7 LLC"),
    "vmware": ("VMware Tools", "http://www.vmware.com", "0a0b1e4ab35e4e1bcd3bc6e1c0de7f3a",
               "DigiCert Trusted G4 Code Signing RSA4096 SHA384 2021 CA1", "VMware, Inc."),
}


def authenticode(path: str, signer: str) -> dict[str, Any]:
    """The authenticode() dict of a binary signed by ``signer`` ("" = unsigned)."""
    info = _SIGNERS.get(signer)
    if info is None:
        return {"Filename": path, "ProgramName": "", "PublisherLink": "", "MoreInfoLink": "",
                "SerialNumber": "", "IssuerName": "", "SubjectName": "", "TimestampIssuerName": "",
                "TimestampSubjectName": "", "Timestamp": "",
                "Trusted": "unsigned" if path else "untrusted"}
    program, link, serial, issuer, subject = info
    org = "O=Microsoft Corporation" if signer.startswith("ms") else f"O={subject}"
    return {
        "Filename": path, "ProgramName": program, "PublisherLink": "", "MoreInfoLink": link,
        "SerialNumber": serial,
        "IssuerName": f"C=US, {org if signer.startswith('ms') else 'O=DigiCert, Inc.'}, "
                      f"CN={issuer}",
        "SubjectName": f"C=US, {org}, CN={subject}",
        "TimestampIssuerName": "", "TimestampSubjectName": "", "Timestamp": "",
        "Trusted": "trusted",
    }


def exe_hash(client: Client, proc: Proc) -> dict[str, str] | None:
    """hash(path=Exe) for a process (None when there is no file)."""
    if not proc.exe:
        return None
    return dict(file_hashes(content_key(client, proc.exe), proc.exe_size))


def token_info(client: Client, proc: Proc) -> dict[str, Any] | None:
    """token(pid=Pid) (None for protected processes, which refuse to be opened)."""
    if proc.name in _PROTECTED:
        return None
    admins = "S-1-5-32-544"
    groups = {"S-1-1-0": "ENABLED,ENABLED_BY_DEFAULT,MANDATORY",
              admins: "ENABLED,ENABLED_BY_DEFAULT,MANDATORY,OWNER" if proc.elevated
              else "USE_FOR_DENY_ONLY",
              "S-1-5-11": "ENABLED,ENABLED_BY_DEFAULT,MANDATORY"}
    names = {"S-1-1-0": "Everyone", admins: "Administrators", "S-1-5-11": "Authenticated Users"}
    user = proc.user.split("\\")[-1]
    domain_user = proc.sid.startswith(DOMAIN_SID)
    return {
        "Username": proc.user,
        "ProfileDir": f"C:\\Users\\{user}" if domain_user else None,
        "IsElevated": proc.elevated,
        "Groups": groups,
        "GroupNames": {names[k]: v for k, v in groups.items()},
        "SID": proc.sid,
        "Privileges": {"SeChangeNotifyPrivilege": "ENABLED,ENABLED_BY_DEFAULT",
                       "SeShutdownPrivilege": "", "SeUndockPrivilege": "",
                       **({"SeDebugPrivilege": "ENABLED", "SeImpersonatePrivilege": "ENABLED"}
                          if proc.elevated else {})},
        "PrimaryGroup": f"{DOMAIN_SID}-513" if domain_user else proc.sid,
    }


def host_netbios_user(client: Client, user: str) -> str:
    """``DOMAIN\\user`` in the client's domain."""
    return f"{netbios(client)}\\{user}"
