"""Windows configuration artifacts: services, WMI subscriptions, profiles, RDP events, tasks."""

from __future__ import annotations

import datetime as dt
from typing import Any

from velonb.emulator.world.fleet import DOMAIN, day_start
from velonb.emulator.world.incident import INCIDENT
from velonb.emulator.world.model import Client
from velonb.emulator.world.results_common import (
    content_key,
    file_hashes,
    host_key,
    rng_for,
    ts,
)
from velonb.emulator.world.results_winproc import (
    authenticode,
    netbios,
    user_sid,
    windows_state,
)

_SVCHOST = "C:\\Windows\\system32\\svchost.exe -k "
_LS, _NS, _SYS = "NT AUTHORITY\\LocalService", "NT AUTHORITY\\NetworkService", "LocalSystem"
_VELO = ("\"C:\\Program Files\\Velociraptor\\Velociraptor.exe\" --config \"C:\\Program Files\\"
         "Velociraptor\\client.config.yaml\" service run")
_SQLBIN = "C:\\Program Files\\Microsoft SQL Server\\MSSQL16.MSSQLSERVER\\MSSQL\\Binn\\"
# name, display name, path, start mode, running, account, service dll, where
_SERVICES: tuple[tuple[str, str, str, str, bool, str, str, str], ...] = (
    ("BFE", "Base Filtering Engine", _SVCHOST + "LocalServiceNoNetworkFirewall -p", "Auto", True,
     _LS, "bfe.dll", "all"),
    ("BITS", "Background Intelligent Transfer Service", _SVCHOST + "netsvcs -p", "Manual", False,
     _SYS, "qmgr.dll", "all"),
    ("CryptSvc", "Cryptographic Services", _SVCHOST + "NetworkService -p", "Auto", True, _NS,
     "cryptsvc.dll", "all"),
    ("DcomLaunch", "DCOM Server Process Launcher", _SVCHOST + "DcomLaunch -p", "Auto", True, _SYS,
     "rpcss.dll", "all"),
    ("Dhcp", "DHCP Client", _SVCHOST + "LocalServiceNetworkRestricted -p", "Auto", True, _LS,
     "dhcpcore.dll", "all"),
    ("Dnscache", "DNS Client", _SVCHOST + "NetworkService -p", "Auto", True, _NS, "dnsrslvr.dll",
     "all"),
    ("EventLog", "Windows Event Log", _SVCHOST + "LocalServiceNetworkRestricted -p", "Auto", True,
     _LS, "wevtsvc.dll", "all"),
    ("gpsvc", "Group Policy Client", _SVCHOST + "netsvcs -p", "Auto", True, _SYS, "gpsvc.dll",
     "all"),
    ("LanmanServer", "Server", _SVCHOST + "smbsvcs", "Auto", True, _SYS, "srvsvc.dll", "all"),
    ("LanmanWorkstation", "Workstation", _SVCHOST + "NetworkService -p", "Auto", True, _NS,
     "wkssvc.dll", "all"),
    ("MpsSvc", "Windows Defender Firewall", _SVCHOST + "LocalServiceNoNetworkFirewall -p", "Auto",
     True, _LS, "mpssvc.dll", "all"),
    ("msiserver", "Windows Installer", "C:\\Windows\\system32\\msiexec.exe /V", "Manual", False,
     _SYS, "", "all"),
    ("RpcSs", "Remote Procedure Call (RPC)", _SVCHOST + "rpcss -p", "Auto", True, _NS, "rpcss.dll",
     "all"),
    ("Schedule", "Task Scheduler", _SVCHOST + "netsvcs -p", "Auto", True, _SYS, "schedsvc.dll",
     "all"),
    ("Spooler", "Print Spooler", "C:\\Windows\\System32\\spoolsv.exe", "Auto", True, _SYS, "",
     "all"),
    ("TermService", "Remote Desktop Services", _SVCHOST + "NetworkService", "Manual", True, _NS,
     "termsrv.dll", "all"),
    ("W32Time", "Windows Time", _SVCHOST + "LocalService", "Manual", True, _LS, "w32time.dll",
     "all"),
    ("WinDefend", "Microsoft Defender Antivirus Service", "\"C:\\ProgramData\\Microsoft\\Windows "
     "Defender\\Platform\\4.18.24090.11-0\\MsMpEng.exe\"", "Auto", True, _SYS, "", "all"),
    ("Winmgmt", "Windows Management Instrumentation", _SVCHOST + "netsvcs -p", "Auto", True, _SYS,
     "wbem\\WMIsvc.dll", "all"),
    ("WinRM", "Windows Remote Management (WS-Management)", _SVCHOST + "NetworkService -p", "Auto",
     True, _NS, "WsmSvc.dll", "srv"),
    ("wuauserv", "Windows Update", _SVCHOST + "netsvcs -p", "Manual", True, _SYS, "wuaueng.dll",
     "all"),
    ("Velociraptor", "Velociraptor", _VELO, "Auto", True, _SYS, "", "all"),
    ("VMTools", "VMware Tools", "\"C:\\Program Files\\VMware\\VMware Tools\\vmtoolsd.exe\"",
     "Auto", True, _SYS, "", "srv"),
    ("SysMain", "SysMain", _SVCHOST + "LocalSystemNetworkRestricted -p", "Auto", True, _SYS,
     "sysmain.dll", "ws"),
    ("WSearch", "Windows Search", "C:\\Windows\\system32\\SearchIndexer.exe /Embedding", "Auto",
     True, _SYS, "", "ws"),
    ("edgeupdate", "Microsoft Edge Update Service (edgeupdate)", "\"C:\\Program Files (x86)\\"
     "Microsoft\\EdgeUpdate\\MicrosoftEdgeUpdate.exe\" /svc", "Auto", False, _SYS, "", "ws"),
    ("gupdate", "Google Update Service (gupdate)", "\"C:\\Program Files (x86)\\Google\\Update\\"
     "GoogleUpdate.exe\" /svc", "Auto", False, _SYS, "", "ws"),
    ("NTDS", "Active Directory Domain Services", "C:\\Windows\\System32\\lsass.exe", "Auto", True,
     _SYS, "", "dc"),
    ("Kdc", "Kerberos Key Distribution Center", "C:\\Windows\\System32\\lsass.exe", "Auto", True,
     _SYS, "", "dc"),
    ("DNS", "DNS Server", "C:\\Windows\\system32\\dns.exe", "Auto", True, _SYS, "", "dc"),
    ("DFSR", "DFS Replication", "C:\\Windows\\system32\\DFSRs.exe", "Auto", True, _SYS, "", "dc"),
    ("ADWS", "Active Directory Web Services", "C:\\Windows\\ADWS\\"
     "Microsoft.ActiveDirectory.WebServices.exe", "Auto", True, _SYS, "", "dc"),
    ("W3SVC", "World Wide Web Publishing Service", _SVCHOST + "iissvcs", "Auto", True, _SYS,
     "inetsrv\\iisw3adm.dll", "web"),
    ("WAS", "Windows Process Activation Service", _SVCHOST + "iissvcs", "Manual", True, _SYS,
     "inetsrv\\iisw3adm.dll", "web"),
    ("MSSQLSERVER", "SQL Server (MSSQLSERVER)", f"\"{_SQLBIN}sqlservr.exe\" -sMSSQLSERVER", "Auto",
     True, "NT Service\\MSSQLSERVER", "", "sql"),
    ("SQLSERVERAGENT", "SQL Server Agent (MSSQLSERVER)", f"\"{_SQLBIN}SQLAGENT.EXE\" -i "
     "MSSQLSERVER", "Auto", True, "NT Service\\SQLSERVERAGENT", "", "sql"),
    ("Dfs", "DFS Namespace", "C:\\Windows\\system32\\dfssvc.exe", "Auto", True, _SYS, "",
     "fileserver"),
)
_RESTART = {"ResetPeriod": 86400, "FailureAction": [
    {"Type": "SC_ACTION_RESTART", "Delay": 60}, {"Type": "SC_ACTION_RESTART", "Delay": 120},
    {"Type": "SC_ACTION_NONE", "Delay": 0}]}


def _where(where: str, client: Client) -> bool:
    server = client.role not in ("workstation", "laptop")
    return where == "all" or (where == "srv" and server) or (where == "ws" and not server) or \
        where == client.role


def _exe_of(path_name: str) -> str:
    if path_name.startswith('"'):
        return path_name[1:].split('"', 1)[0]
    return path_name.split(" ", 1)[0]


def _when(ref: dt.datetime, step: str) -> dt.datetime:
    return INCIDENT.at(step, ref)


def services(client: Client, seed: int, now: dt.datetime) -> list[dict[str, Any]]:
    """Windows.System.Services rows before parameter filtering (hash columns left None)."""
    ref = day_start(now)
    rng = rng_for(host_key(client, seed, ref), "services")
    procs, _ = windows_state(client, seed, now)
    installed = ts(client.first_seen_at) - dt.timedelta(days=rng.uniform(20, 200))
    rows = []
    specs = [s for s in _SERVICES if _where(s[7], client)]
    if client.hostname in INCIDENT.service_hosts:
        specs.append((INCIDENT.service_name, INCIDENT.service_display_name,
                      INCIDENT.service_command, "Auto", True, _SYS, "", "evil"))
    for name, display, path, mode, running, account, dll, where in specs:
        exe = _exe_of(path)
        pid = 0
        if running:
            group = path.split(" -k ", 1)[1].split(" ")[0].lower() if " -k " in path else ""
            for p in procs:
                same = p.exe.lower() == exe.lower() and (
                    not group or f"-k {group}" in p.cmdline.lower())
                if same:
                    pid = p.pid
                    break
        if where == "evil":
            created = _when(ref, "persistence_service")
        elif name == "Velociraptor":
            created = ts(client.first_seen_at - 40)
        else:
            created = installed + dt.timedelta(seconds=rng.uniform(0, 3000))
        rows.append({
            "State": "Running" if running else "Stopped",
            "Name": name,
            "DisplayName": display,
            "Status": "OK",
            "Pid": pid,
            "ExitCode": 0 if running or mode == "Auto" else 1077,
            "StartMode": mode,
            "PathName": path,
            "ServiceType": "Share Process" if exe.lower().endswith(("svchost.exe", "lsass.exe"))
            else "Own Process",
            "UserAccount": account,
            "Created": created,
            "ServiceDll": f"C:\\Windows\\system32\\{dll}" if dll else None,
            "FailureCommand": None,
            "FailureActions": _RESTART if running and rng.random() < 0.4 else None,
            "AbsoluteExePath": exe,
            "HashServiceExe": None,
            "CertinfoServiceExe": None,
            "HashServiceDll": None,
            "CertinfoServiceDll": None,
        })
    return rows


def service_extras(client: Client, row: dict[str, Any], hashes: bool, certs: bool) -> None:
    """Fill the optional hash and signature columns of one service row in place."""
    exe = row["AbsoluteExePath"]
    dll = row["ServiceDll"]
    evil = exe.lower() == INCIDENT.binary_path.lower()
    size = INCIDENT.binary_size if evil else 60_000 + len(exe) * 1024
    if hashes:
        row["HashServiceExe"] = dict(file_hashes(content_key(client, exe), size))
        row["HashServiceDll"] = dict(file_hashes(content_key(client, dll), 400_000 + len(dll)
                                                 * 2048)) if dll else None
    if certs:
        signer = "" if evil else ("velo" if "Velociraptor" in exe else "ms")
        row["CertinfoServiceExe"] = authenticode(exe, signer)
        row["CertinfoServiceDll"] = authenticode(dll, "ms") if dll else None


_SID_BYTES_SYSTEM = [1, 1, 0, 0, 0, 0, 0, 5, 18, 0, 0, 0]
_SID_BYTES_ADMINS = [1, 2, 0, 0, 0, 0, 0, 5, 32, 0, 0, 0, 32, 2, 0, 0]


def wmi_bindings(client: Client) -> list[dict[str, Any]]:
    """Permanent WMI subscriptions: (namespace, consumer, filter) as the rows show them."""
    rows = [{
        "ConsumerDetails": {
            "Category": 0, "CreatorSID": _SID_BYTES_ADMINS, "EventID": 0, "EventType": 1,
            "InsertionStringTemplates": [""], "MachineName": None, "MaximumQueueSize": None,
            "Name": "SCM Event Log Consumer", "NameOfRawDataProperty": None,
            "NameOfUserSIDProperty": "sid", "NumberOfInsertionStrings": 0,
            "SourceName": "Service Control Manager", "UNCServerName": None},
        "FilterDetails": {
            "CreatorSID": _SID_BYTES_ADMINS, "EventAccess": None, "EventNamespace": "root\\cimv2",
            "Name": "SCM Event Log Filter", "Query": "select * from MSFT_SCMEventLogEvent",
            "QueryLanguage": "WQL"},
        "Namespace": "root/subscription",
    }]
    if client.hostname in INCIDENT.wmi_hosts:
        rows.append({
            "ConsumerDetails": {
                "CommandLineTemplate": INCIDENT.wmi_command, "CreateNewConsole": False,
                "CreateNewProcessGroup": False, "CreateSeparateWowVdm": False,
                "CreateSharedWowVdm": False, "CreatorSID": _SID_BYTES_SYSTEM, "DesktopName": None,
                "ExecutablePath": None, "FillAttribute": None, "ForceOffFeedback": False,
                "ForceOnFeedback": False, "KillTimeout": 0, "MachineName": None,
                "MaximumQueueSize": None, "Name": INCIDENT.wmi_consumer, "Priority": 32,
                "RunInteractively": False, "ShowWindowCommand": None, "UseDefaultErrorMode": False,
                "WindowTitle": None, "WorkingDirectory": None, "XCoordinate": None,
                "XNumCharacters": None, "XSize": None, "YCoordinate": None,
                "YNumCharacters": None, "YSize": None},
            "FilterDetails": {
                "CreatorSID": _SID_BYTES_SYSTEM, "EventAccess": None,
                "EventNamespace": "root\\cimv2", "Name": INCIDENT.wmi_filter,
                "Query": INCIDENT.wmi_filter_query, "QueryLanguage": "WQL"},
            "Namespace": "root/subscription",
        })
    return rows


def profiles(client: Client, seed: int, now: dt.datetime) -> list[dict[str, Any]]:
    """Windows.Sys.Users rows (local profiles)."""
    ref = day_start(now)
    rng = rng_for(host_key(client, seed, ref), "profiles")
    key = "HKEY_LOCAL_MACHINE\\SOFTWARE\\Microsoft\\Windows NT\\CurrentVersion\\ProfileList\\"
    installed = ts(client.first_seen_at) - dt.timedelta(days=rng.uniform(10, 90))
    rows: list[dict[str, Any]] = []

    def add(sid: str, name: str, directory: str, created: dt.datetime,
            loaded: dt.datetime | None) -> None:
        rows.append({
            "Uid": sid.split("-")[-1], "Gid": "", "Name": name, "Description": key + sid,
            "Directory": directory, "UUID": sid, "Mtime": loaded or created,
            "HomedirMtime": (loaded or created) + dt.timedelta(seconds=rng.uniform(5, 900)),
            "Data": {"ProfileLoadTime": loaded,
                     "ProfileUnloadTime": loaded - dt.timedelta(hours=rng.uniform(1, 30))
                     if loaded else None},
        })

    add("S-1-5-18", "SYSTEM", "%systemroot%\\system32\\config\\systemprofile", installed, None)
    add("S-1-5-19", "LOCAL SERVICE", "%systemroot%\\ServiceProfiles\\LocalService", installed,
        None)
    add("S-1-5-20", "NETWORK SERVICE", "%systemroot%\\ServiceProfiles\\NetworkService", installed,
        None)
    people = list(client.users) or ["adm-kpatel"]
    if client.role == "workstation" and client.domain == DOMAIN and client.hostname != \
            "WKS-IT-0007":
        people.append("adm-kpatel")  # IT support logged on once
    for user in people:
        first = ts(client.first_seen_at) + dt.timedelta(hours=rng.uniform(1, 200))
        last = ref - dt.timedelta(hours=rng.uniform(2, 120))
        add(user_sid(user), user, f"C:\\Users\\{user}", first, max(first, last))
    for logon in INCIDENT.rdp_logons:
        if logon.target_host == client.hostname:
            when = INCIDENT.at(logon.step, ref) + dt.timedelta(seconds=9)
            add(user_sid(logon.user), logon.user, f"C:\\Users\\{logon.user}", when, when)
    return rows


_LOGS = "C:\\Windows\\System32\\winevt\\Logs\\"
_CHANNELS = {
    "Security": _LOGS + "Security.evtx",
    "System": _LOGS + "System.evtx",
    "Microsoft-Windows-TerminalServices-LocalSessionManager/Operational":
        _LOGS + "Microsoft-Windows-TerminalServices-LocalSessionManager%4Operational.evtx",
    "Microsoft-Windows-TerminalServices-RemoteConnectionManager/Operational":
        _LOGS + "Microsoft-Windows-TerminalServices-RemoteConnectionManager%4Operational.evtx",
}
_TS_NAMES = {21: "RDP_LOCAL_CONNECTED", 22: "RDP_REMOTE_CONNECTED", 23: "RDP_SESSION_LOGOFF",
             24: "RDP_LOCAL_DISCONNECTED", 25: "RDP_REMOTE_RECONNECTION",
             39: "RDP_REMOTE_DISCONNECTED_FORMAL", 40: "RDP_REMOTE_DISCONNECTED_REASON",
             1149: "RDP_INITIATION_SUCCESSFUL", 9009: "DESKTOPWINDOWMANAGER_CLOSED"}
_SEC_NAMES = {4778: "LOGON_RECONNECT_EXISTING", 4779: "SESSION_DISCONNECT",
              4647: "USER_INITIATED_LOGOFF", 4634: "LOGOFF_DISCONNECT"}


def _describe(channel: str, event_id: int, logon_type: object) -> str | None:
    if channel != "Security":
        return _TS_NAMES.get(event_id)
    named: dict[tuple[int, object], str] = {
             (4624, 10): "RDP_LOGON_SUCCESSFUL_NEW", (4624, 3): "LOGON_SUCCESSFUL",
             (4624, 7): "LOGON_SUCCESSFUL_OLD", (4625, 3): "LOGON_FAILED",
             (4625, 10): "RDP_LOGON_FAILED"}
    return named.get((event_id, logon_type)) or _SEC_NAMES.get(event_id)


def rdp_events(client: Client, seed: int, now: dt.datetime) -> list[dict[str, Any]]:
    """Windows.EventLogs.RDPAuth rows before filtering, in time order."""
    ref = day_start(now)
    rng = rng_for(host_key(client, seed, ref), "rdp")
    dom = netbios(client)
    events: list[tuple[dt.datetime, str, int, str, str, object, str]] = []

    def sec(t: dt.datetime, eid: int, user: str, lt: int, ip: str, domain: str = dom) -> None:
        events.append((t, "Security", eid, domain, user, lt, ip))

    def session(t: dt.datetime, user: str, ip: str, minutes: float, logoff: bool) -> None:
        lsm, rcm = ("Microsoft-Windows-TerminalServices-LocalSessionManager/Operational",
                    "Microsoft-Windows-TerminalServices-RemoteConnectionManager/Operational")
        events.append((t - dt.timedelta(seconds=4), rcm, 1149, dom, user, "null", ip))
        sec(t, 4624, user, 10, ip)
        events.append((t + dt.timedelta(seconds=2), lsm, 21, dom, user, "null", ip))
        events.append((t + dt.timedelta(seconds=3), lsm, 22, dom, user, "null", ip))
        end = t + dt.timedelta(minutes=minutes)
        events.append((end, lsm, 24, dom, user, "null", ip))
        sec(end + dt.timedelta(seconds=1), 4779, user, 10, ip)
        if logoff:
            events.append((end + dt.timedelta(seconds=30), lsm, 23, dom, user, "null", "null"))
            sec(end + dt.timedelta(seconds=31), 4634, user, 10, "-")
            events.append((end + dt.timedelta(seconds=33), "System", 9009, "null", "null", "null",
                           "null"))

    server = client.role not in ("workstation", "laptop")
    for _ in range(rng.randrange(40, 90)):  # network logons (shares, GPO, management)
        t = ref - dt.timedelta(seconds=rng.uniform(60, 14 * 86400))
        if rng.random() < 0.45:
            peer = rng.choice(["WKS-FIN-0042", "WKS-HR-0013", "DC-01", "SRV-SQL-01", "DC-02"])
            sec(t, 4624, f"{peer}$", 3, f"10.{rng.choice([10, 20])}.0.{rng.randrange(10, 60)}")
        else:
            user = rng.choice(["svc_backup", "svc_sccm", "adm-kpatel", *client.users] if server
                              else ["adm-kpatel", "svc_sccm"])
            ip = {"svc_backup": "10.10.0.50", "svc_sccm": "10.10.0.60"}.get(user, "10.20.5.7")
            sec(t, 4624, user, 3, ip)
            sec(t + dt.timedelta(seconds=rng.uniform(1, 300)), 4634, user, 3, "-")
    if not server:
        for user in client.users:
            for _ in range(rng.randrange(5, 15)):
                sec(ref - dt.timedelta(seconds=rng.uniform(60, 14 * 86400)), 4624, user, 7,
                    "127.0.0.1")
    for _ in range(rng.randrange(1, 4)):  # a failed password now and then
        sec(ref - dt.timedelta(seconds=rng.uniform(60, 14 * 86400)), 4625,
            rng.choice([*client.users, "adm-kpatel"]), 3, "10.20.5.7")
    if server or "it" in client.labels:
        for _ in range(rng.randrange(2, 7)):
            session(ref - dt.timedelta(seconds=rng.uniform(3600, 14 * 86400)), "adm-kpatel",
                    "10.20.5.7", rng.uniform(5, 90), logoff=True)
    for logon in INCIDENT.rdp_logons:
        if logon.target_host == client.hostname:
            session(INCIDENT.at(logon.step, ref), logon.user, logon.source_ip, 41, logoff=False)
    events.sort(key=lambda e: e[0])
    counters = {ch: rng.randrange(10_000, 900_000) for ch in _CHANNELS}
    rows = []
    for t, channel, eid, domain, user, lt, ip in events:
        counters[channel] += rng.randrange(1, 40)
        rows.append({
            "EventTime": t, "Computer": client.fqdn, "Channel": channel, "EventID": eid,
            "DomainName": domain, "UserName": user, "LogonType": lt, "SourceIP": ip,
            "Description": _describe(channel, eid, lt), "Message": None,
            "EventRecordID": counters[channel], "OSPath": _CHANNELS[channel],
        })
    return rows


_TASKS: tuple[tuple[str, str, str, str, str], ...] = (
    ("\\Microsoft\\Windows\\Defrag\\ScheduledDefrag", "%windir%\\system32\\defrag.exe",
     "-c -h -o -$", "S-1-5-18", "HighestAvailable"),
    ("\\Microsoft\\Windows\\Windows Error Reporting\\QueueReporting",
     "%windir%\\system32\\wermgr.exe", "-upload", "S-1-5-18", "LeastPrivilege"),
    ("\\Microsoft\\Windows\\Application Experience\\Microsoft Compatibility Appraiser",
     "%windir%\\system32\\compattelrunner.exe", "", "S-1-5-18", "HighestAvailable"),
    ("\\Microsoft\\Windows\\DiskCleanup\\SilentCleanup", "%windir%\\system32\\cleanmgr.exe",
     "/autoclean /d %systemdrive%", "S-1-5-32-545", "HighestAvailable"),
    ("\\Microsoft\\Windows\\UpdateOrchestrator\\Schedule Scan",
     "%systemroot%\\system32\\usoclient.exe", "StartScan", "S-1-5-18", "LeastPrivilege"),
    ("\\Microsoft\\Windows\\Windows Defender\\Windows Defender Scheduled Scan",
     "C:\\ProgramData\\Microsoft\\Windows Defender\\Platform\\4.18.24090.11-0\\MpCmdRun.exe",
     "Scan -ScheduleJob -ScanTrigger 55", "S-1-5-18", "HighestAvailable"),
    ("\\Microsoft\\Windows\\Time Synchronization\\SynchronizeTime",
     "%windir%\\system32\\sc.exe", "start w32time task_started", "S-1-5-19", "LeastPrivilege"),
    ("\\MicrosoftEdgeUpdateTaskMachineCore", "C:\\Program Files (x86)\\Microsoft\\EdgeUpdate\\"
     "MicrosoftEdgeUpdate.exe", "/c", "S-1-5-18", "HighestAvailable"),
    ("\\GoogleUpdateTaskMachineUA", "C:\\Program Files (x86)\\Google\\Update\\GoogleUpdate.exe",
     "/ua /installsource scheduler", "S-1-5-18", "HighestAvailable"),
)


def _expand(path: str) -> str:
    for var, value in (("%windir%", "C:\\Windows"), ("%systemroot%", "C:\\Windows"),
                       ("%systemdrive%", "C:")):
        if path.lower().startswith(var):
            path = value + path[len(var):]
    return path.lower()


def tasks(client: Client, seed: int, now: dt.datetime) -> list[dict[str, Any]]:
    """Windows.System.TaskScheduler/Analysis rows before filtering."""
    ref = day_start(now)
    rng = rng_for(host_key(client, seed, ref), "tasks")
    rows = []
    for name, command, args, user, level in _TASKS:
        registered = ts(client.first_seen_at) - dt.timedelta(days=rng.uniform(5, 300))
        exe = _expand(command)
        signer = "google" if "google" in exe else ("msc" if "edge" in exe or "defender" in exe
                                                   else "ms")
        xml = {"Task": {"RegistrationInfo": {"URI": name, "Date": registered.isoformat()},
                        "Principals": {"Principal": {"UserId": user, "RunLevel": level}},
                        "Actions": {"Exec": {"Command": command, "Arguments": args}}}}
        rows.append({
            "TaskName": name, "Mtime": registered + dt.timedelta(days=rng.uniform(0, 4)),
            "Command": exe, "Arguments": args or None, "UserId": user, "RunLevel": level,
            "LogonType": None, "StateChange": None, "ComHandler": None,
            "RegistrationTime": registered,
            "StartBoundary": registered.replace(hour=3, minute=0, second=0, microsecond=0)
            if rng.random() < 0.5 else None,
            "_XML": xml, "OSPath": "C:\\Windows\\System32\\Tasks" + name,
            "Authenticode": authenticode(exe, signer), "Upload": None,
        })
    return rows
