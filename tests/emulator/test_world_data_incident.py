"""The planted incident is visible where INCIDENT says, and nowhere else."""

import base64
import datetime as dt
import hashlib

from velonb.emulator.world.catalog import build_catalog
from velonb.emulator.world.fleet import build_fleet
from velonb.emulator.world.incident import INCIDENT, implant_bytes
from velonb.emulator.world.results import collect

NOW = dt.datetime(2026, 12, 4, 15, 30, tzinfo=dt.UTC)
HOSTS = {c.hostname: c for c in build_fleet(now=NOW) if c.org_id == "root"}
CATALOG = build_catalog()
WINDOWS = [h for h, c in HOSTS.items() if c.system == "windows"]


def rows(host, artifact, params=None):
    out = collect(HOSTS[host], CATALOG[artifact], params or {}, now=NOW)
    return next(iter(out.results.values()))


def test_incident_facts_are_consistent():
    data = implant_bytes()
    assert len(data) == INCIDENT.binary_size
    assert hashlib.sha256(data).hexdigest() == INCIDENT.binary_sha256
    encoded = INCIDENT.powershell_cmdline.split("-enc ")[1]
    assert base64.b64decode(encoded).decode("utf-16-le") == INCIDENT.decoded_command
    assert INCIDENT.beacon_ip in INCIDENT.decoded_command
    times = list(INCIDENT.timeline(NOW).values())
    assert times == sorted(times) and times[-1] < NOW
    assert set(INCIDENT.touched_hosts) <= set(HOSTS)


def test_process_chain_on_patient_zero():
    procs = {r["Pid"]: r for r in rows(INCIDENT.patient_zero, "Windows.System.Pslist")}
    implant = next(r for r in procs.values() if r["Name"] == INCIDENT.binary_name)
    chain = [implant]
    while chain[-1]["Ppid"] in procs:
        chain.append(procs[chain[-1]["Ppid"]])
    names = [r["Name"] for r in chain]
    assert names[:5] == ["msdtcsvc.exe", "powershell.exe", "cmd.exe", "WINWORD.EXE",
                         "explorer.exe"]
    assert chain[1]["CommandLine"] == INCIDENT.powershell_cmdline
    assert chain[3]["CreateTime"] == INCIDENT.at("initial_access", NOW)
    assert implant["Hash"]["SHA256"] == INCIDENT.binary_sha256
    assert implant["Authenticode"]["Trusted"] == "unsigned"
    assert implant["Exe"] == INCIDENT.binary_path


def test_beacon_only_on_compromised_hosts():
    beaconing = set()
    for host in WINDOWS:
        for r in rows(host, "Windows.Network.Netstat"):
            if r["Raddr.IP"] == INCIDENT.beacon_ip:
                assert r["Raddr.Port"] == INCIDENT.beacon_port and r["Status"] == "ESTAB"
                assert r["Name"] == INCIDENT.binary_name
                beaconing.add(host)
    assert beaconing == set(INCIDENT.compromised_hosts)


def test_persistence_wmi_and_service():
    for host in WINDOWS:
        consumers = {r["ConsumerDetails"]["Name"]
                     for r in rows(host, "Windows.Persistence.PermanentWMIEvents")}
        assert (INCIDENT.wmi_consumer in consumers) == (host in INCIDENT.wmi_hosts)
    evil = rows("SRV-FS-01", "Windows.System.Services", {"NameRegex": INCIDENT.service_name})
    assert len(evil) == 1 and evil[0]["PathName"] == INCIDENT.service_command
    assert evil[0]["Created"] == INCIDENT.at("persistence_service", NOW)
    assert rows("SRV-SQL-01", "Windows.System.Services",
                {"NameRegex": INCIDENT.service_name}) == []
    custom = rows(INCIDENT.patient_zero, "Windows.Persistence.PermanentWMIEvents",
                  {"Namespaces": "namespace\nroot/default\n"})
    assert custom == []


def test_file_finder_finds_and_uploads_the_binary():
    glob = {"SearchFilesGlobTable": "Glob\nC:/ProgramData/Microsoft/*/*.exe\n"}
    for host in WINDOWS:
        found = rows(host, "Windows.Search.FileFinder", glob)
        paths = [r["OSPath"] for r in found]
        assert (INCIDENT.binary_path in paths) == (host in INCIDENT.compromised_hosts)
    out = collect(HOSTS["SRV-FS-01"], CATALOG["Windows.Search.FileFinder"],
                  {**glob, "Upload_File": "Y", "Calculate_Hash": "Y"}, now=NOW)
    (row,) = out.results["Windows.Search.FileFinder"]
    assert row["Size"] == INCIDENT.binary_size and row["Hash"]["SHA256"] == INCIDENT.binary_sha256
    assert out.uploads[0].data == implant_bytes()
    assert out.uploads[0].client_path == INCIDENT.binary_path
    yara = 'rule c2 { strings: $a = "203.0.113.47:8443" condition: $a }'
    hit = rows(INCIDENT.patient_zero, "Windows.Search.FileFinder",
               {"Glob": "C:/ProgramData/**", "YaraRule": yara})
    assert [r["OSPath"] for r in hit] == [INCIDENT.binary_path]
    assert hit[0]["Keywords"] == "203.0.113.47:8443"


def test_rdp_lateral_movement():
    for logon in INCIDENT.rdp_logons:
        events = rows(logon.target_host, "Windows.EventLogs.RDPAuth",
                      {"UserNameRegex": logon.user, "SourceIPRegex": logon.source_ip})
        new = [e for e in events if e["Description"] == "RDP_LOGON_SUCCESSFUL_NEW"]
        assert [e["EventTime"] for e in new] == [INCIDENT.at(logon.step, NOW)]
        assert new[0]["LogonType"] == 10 and new[0]["DomainName"] == logon.domain
        profiles = {r["Name"] for r in rows(logon.target_host, "Windows.Sys.Users")}
        assert logon.user in profiles
    assert not [e for e in rows("SRV-SQL-01", "Windows.EventLogs.RDPAuth")
                if e["UserName"] == INCIDENT.stolen_account and e["LogonType"] == 10]


def test_prefetch_and_stacking():
    for host in ("WKS-FIN-0042", "WKS-FIN-0057"):
        pf = rows(host, "Windows.Forensics.Prefetch", {"binaryRegex": "msdtcsvc"})
        assert len(pf) == 1 and pf[0]["ExecutableDosPath"] == INCIDENT.binary_path.upper()
    assert rows("WKS-HR-0013", "Windows.Forensics.Prefetch", {"binaryRegex": "msdtcsvc"}) == []
    assert rows("SRV-FS-01", "Windows.Forensics.Prefetch") == []  # servers: prefetch disabled
    counts: dict[str, set[str]] = {}
    for host in WINDOWS:
        for r in rows(host, "Windows.System.Pslist"):
            if r["Hash"]:
                counts.setdefault(r["Hash"]["SHA256"], set()).add(host)
    rare = [h for h, hosts in counts.items() if 1 < len(hosts) <= 3]
    assert INCIDENT.binary_sha256 in rare
    assert counts[INCIDENT.binary_sha256] == set(INCIDENT.compromised_hosts)
