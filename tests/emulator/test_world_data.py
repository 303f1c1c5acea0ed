"""The simulated world's data: fleet, catalog and per-artifact results (shapes, units, params)."""

import datetime as dt
import itertools
import json
import time

import pytest
import yaml

from velonb.emulator.gojson import dumps_rows
from velonb.emulator.world.catalog import build_catalog, definition_row
from velonb.emulator.world.fleet import ORGS, build_fleet, client_row
from velonb.emulator.world.results import (
    bulk_pslist_rows,
    collect,
    event_rows,
    server_rows,
)

NOW = dt.datetime(2026, 12, 4, 15, 30, tzinfo=dt.UTC)
FLEET = build_fleet(now=NOW)
HOSTS = {c.hostname: c for c in FLEET}
CATALOG = build_catalog()

CLIENT_KEYS = ["client_id", "agent_information", "os_info", "first_seen_at", "last_seen_at",
               "last_ip", "last_interrogate_flow_id", "last_interrogate_artifact_name", "labels",
               "last_hunt_timestamp", "last_event_table_version", "last_label_timestamp",
               "in_flight_flows"]
DEFINITION_KEYS = ["name", "aliases", "description", "author", "reference", "references",
                   "required_permissions", "implied_permissions", "impersonate", "resources",
                   "tools", "precondition", "parameters", "type", "sources", "imports", "export",
                   "reports", "column_types", "raw", "compiled", "built_in", "compiled_in",
                   "is_alias", "is_inherited", "metadata"]
# artifact -> (an OS it runs on, {result name: real columns in order})
COLUMNS = {
    "Windows.System.Pslist": ("WKS-HR-0013", {"Windows.System.Pslist": [
        "CreateTime", "Pid", "Ppid", "TokenIsElevated", "Name", "CommandLine", "Exe", "TokenInfo",
        "Hash", "Authenticode", "Username", "WorkingSetSize"]}),
    "Windows.Network.Netstat": ("DC-01", {"Windows.Network.Netstat": [
        "Pid", "Name", "Family", "Type", "Status", "Laddr.IP", "Laddr.Port", "Raddr.IP",
        "Raddr.Port", "Timestamp"]}),
    "Windows.Sys.Users": ("SRV-SQL-01", {"Windows.Sys.Users": [
        "Uid", "Gid", "Name", "Description", "Directory", "UUID", "Mtime", "HomedirMtime",
        "Data"]}),
    "Windows.Forensics.Prefetch": ("WKS-ENG-0108", {"Windows.Forensics.Prefetch": [
        "_SCCAHeader", "Executable", "FileSize", "Hash", "Version", "LastRunTimes", "RunCount",
        "ExecutablePath", "ExecutableDosPath", "OSPath", "PrefetchFileName", "CreationTime",
        "ModificationTime", "Binary", "FilesAccessed", "VolumeInfo"]}),
    "Windows.System.Services": ("DC-02", {"Windows.System.Services": [
        "State", "Name", "DisplayName", "Status", "Pid", "ExitCode", "StartMode", "PathName",
        "ServiceType", "UserAccount", "Created", "ServiceDll", "FailureCommand", "FailureActions",
        "AbsoluteExePath", "HashServiceExe", "CertinfoServiceExe", "HashServiceDll",
        "CertinfoServiceDll"]}),
    "Windows.Persistence.PermanentWMIEvents": ("WKS-HR-0013", {
        "Windows.Persistence.PermanentWMIEvents": ["ConsumerDetails", "FilterDetails",
                                                   "Namespace"]}),
    "Windows.EventLogs.RDPAuth": ("DC-02", {"Windows.EventLogs.RDPAuth": [
        "EventTime", "Computer", "Channel", "EventID", "DomainName", "UserName", "LogonType",
        "SourceIP", "Description", "Message", "EventRecordID", "OSPath"]}),
    "Windows.System.TaskScheduler": ("WKS-IT-0007", {"Windows.System.TaskScheduler/Analysis": [
        "TaskName", "Mtime", "Command", "Arguments", "UserId", "RunLevel", "LogonType",
        "StateChange", "ComHandler", "RegistrationTime", "StartBoundary", "_XML", "OSPath",
        "Authenticode", "Upload"]}),
    "Linux.Sys.Pslist": ("lnx-db-01", {"Linux.Sys.Pslist": [
        "Pid", "Ppid", "Name", "CommandLine", "Exe", "Hash", "Username", "CreateTime", "RSS",
        "Deleted"]}),
    "Linux.Network.Netstat": ("lnx-web-01", {
        "Linux.Network.Netstat/TCP4": ["inode", "State", "uid", "ProcessInfo", "LocalAddr",
                                       "LocalPort", "RemoteAddr", "RemotePort"],
        "Linux.Network.Netstat/TCP6": ["Type", "inode", "State", "uid", "ProcessInfo",
                                       "LocalAddr", "LocalPort", "RemoteAddr", "RemotePort"]}),
    "Linux.Sys.Users": ("lnx-bastion-01", {"Linux.Sys.Users": [
        "User", "Description", "Uid", "Gid", "Homedir", "Shell"]}),
    "Linux.Sys.BashHistory": ("lnx-web-01", {"Linux.Sys.BashHistory": ["Line", "OSPath"]}),
    "MacOS.System.Users": ("MBP-CEO-01", {"MacOS.System.Users": [
        "Name", "RealName", "Uid", "Gid", "UUid", "UserShell", "HomeDir", "AppleId",
        "CreationTime", "FailedLoginCount", "FailedLoginTimestamp", "PasswordLastSetTime"]}),
    "Generic.Client.Info": ("WKS-FIN-0057", {
        "Generic.Client.Info/BasicInformation": [
            "Name", "BuildTime", "Version", "build_url", "install_time", "Labels", "Hostname",
            "OS", "Architecture", "Platform", "PlatformVersion", "KernelVersion", "Fqdn",
            "MACAddresses"],
        "Generic.Client.Info/DetailedInfo": ["Param", "Value"],
        "Generic.Client.Info/WindowsInfo": ["Computer Info", "Network Info"],
        "Generic.Client.Info/Users": ["Name", "Description", "LastLogin"]}),
}


def run(host, artifact, params=None, *, seed=7, now=NOW):
    return collect(HOSTS[host], CATALOG[artifact], params or {}, seed=seed, now=now)


def rows(host, artifact, params=None, **kw):
    out = run(host, artifact, params, **kw)
    return next(iter(out.results.values())) if out.results else []


# -- fleet ------------------------------------------------------------------------------------

def test_fleet_orgs_sizes_and_os_mix():
    assert ORGS == {"root": "<root>", "O1234": "Second Org"}
    root = [c for c in FLEET if c.org_id == "root"]
    other = [c for c in FLEET if c.org_id == "O1234"]
    assert len(root) >= 12 and len(other) >= 3
    assert {c.system for c in root} == {"windows", "linux", "darwin"}
    assert all(c.client_id.startswith("C.") and len(c.client_id) == 18 for c in root)
    assert all(c.client_id.endswith("-O1234") and len(c.client_id) == 24 for c in other)
    assert len({c.client_id for c in FLEET}) == len(FLEET)
    releases = " ".join(c.release for c in root)
    for word in ("Windows 10", "Windows 11", "Server 2016", "Server 2019", "Server 2022",
                 "ubuntu", "redhat", "debian", "darwin"):
        assert word in releases
    assert any(not c.labels for c in root) and any("dc" in c.labels for c in root)
    assert sum(not c.online for c in root) >= 2
    assert len({c.agent_version for c in root}) >= 3


def test_fleet_units_and_addresses():
    now_s = NOW.timestamp()
    for c in FLEET:
        assert now_s - 3 * 365 * 86400 < c.first_seen_at < now_s  # seconds
        assert c.first_seen_at * 1_000_000 < c.last_seen_at <= now_s * 1_000_000  # µs
        if c.online:
            assert now_s - 60 < c.last_seen_at / 1e6
        else:
            assert c.last_seen_at / 1e6 < now_s - 86400
        ip, port = c.last_ip.rsplit(":", 1)
        assert ip.startswith(("10.", "172.16.", "192.168.")) and 1024 < int(port) < 65536
        assert c.fqdn.startswith(c.hostname + ".") and c.mac_addresses


def test_fleet_is_deterministic_ids_are_seed_independent():
    assert build_fleet(7, NOW) == build_fleet(7, NOW)
    other = build_fleet(8, NOW)
    assert [c.client_id for c in other] == [c.client_id for c in FLEET]
    assert [c.mac_addresses for c in other] != [c.mac_addresses for c in FLEET]


def test_client_row_shape():
    row = client_row(HOSTS["DC-01"])
    assert list(row) == CLIENT_KEYS
    assert list(row["agent_information"]) == ["version", "name", "build_time", "build_url"]
    assert list(row["os_info"]) == ["system", "hostname", "release", "machine", "fqdn",
                                    "mac_addresses"]
    assert row["os_info"]["release"] == "Microsoft Windows Server 2022 Datacenter10.0.20348 " \
                                        "Build 20348"
    assert isinstance(row["first_seen_at"], int) and isinstance(row["last_seen_at"], int)
    assert row["in_flight_flows"] == {} and row["labels"] == ["servers", "dc"]
    json.loads(dumps_rows([row]))


# -- catalog ----------------------------------------------------------------------------------

def test_catalog_contents_and_types():
    assert len(CATALOG) >= 16
    for name in COLUMNS:
        assert CATALOG[name].type == "client"
    assert CATALOG["Generic.Client.Stats"].type == "client_event"
    assert CATALOG["System.Flow.Completion"].type == "client_event"
    assert CATALOG["Server.Monitor.Health"].type == "server_event"
    assert CATALOG["Server.Utils.CollectClient"].type == "server"
    assert CATALOG["Server.Monitor.Health"].result_names() == ["Server.Monitor.Health/Prometheus"]
    info = CATALOG["Generic.Client.Info"]
    assert [s.name for s in info.sources] == ["BasicInformation", "DetailedInfo", "LinuxInfo",
                                              "WindowsInfo", "Users"]


def test_catalog_parameters_match_the_real_artifacts():
    ff = {p.name: p for p in CATALOG["Windows.Search.FileFinder"].parameters}
    assert ff["Upload_File"].type == "bool" and ff["Upload_File"].default == "N"
    assert ff["Accessor"].type == "choices" and ff["Accessor"].choices == [
        "auto", "registry", "file", "ntfs", "ntfs_vss"]
    assert ff["SearchFilesGlobTable"].type == "csv"
    assert ff["SearchFilesGlobTable"].default == "Glob\nC:/Users/SomeUser/*\n"
    assert ff["YaraRule"].type == "yara" and ff["YaraRule"].default == ""
    rdp = {p.name: p for p in CATALOG["Windows.EventLogs.RDPAuth"].parameters}
    assert rdp["UserNameWhitelist"].default == "\\$$" and rdp["VSSAnalysisAge"].default == "0"
    assert rdp["DateAfter"].type == "timestamp"
    assert CATALOG["Generic.Client.Stats"].defaults() == {"Frequency": "10"}
    assert CATALOG["Linux.Network.Netstat"].defaults() == {"StateRegex": "LISTEN|ESTAB"}
    assert CATALOG["Linux.Sys.Pslist"].aliases == ["MacOS.Sys.Pslist"]


def test_definition_row_shape():
    for defn in CATALOG.values():
        row = definition_row(defn)
        assert list(row) == DEFINITION_KEYS
        assert row["type"] == row["type"].lower()
        assert yaml.safe_load(row["raw"])["name"] == defn.name
        for p in row["parameters"]:
            assert list(p) == ["name", "default", "description", "type", "choices",
                               "friendly_name", "validating_regex", "artifact_type", "sources"]
        for s in row["sources"]:
            assert list(s) == ["name", "description", "precondition", "query", "queries",
                               "notebook"]
        assert list(row["metadata"]) == ["hidden", "basic", "tags"]
        json.loads(dumps_rows([row]))


# -- results ----------------------------------------------------------------------------------

@pytest.mark.parametrize("artifact", sorted(COLUMNS))
def test_every_artifact_has_the_real_columns(artifact):
    host, results = COLUMNS[artifact]
    out = run(host, artifact)
    assert out.error is None
    for name, columns in results.items():
        got = out.results[name]
        assert got, name
        for row in got:
            assert list(row) == columns
        json.loads(dumps_rows(got))  # encodable as the server writes it


@pytest.mark.parametrize("artifact", ["Windows.System.Pslist", "Windows.Network.Netstat",
                                      "Windows.Search.FileFinder", "Linux.Sys.Pslist"])
def test_precondition_skips_the_wrong_os(artifact):
    host = "lnx-web-01" if artifact.startswith("Windows") else "WKS-FIN-0042"
    out = run(host, artifact)
    assert out.results == {} and out.error is None
    assert out.logs == [f"INFO:{artifact}: Skipping query due to preconditions"]


def test_row_counts_are_realistic():
    assert 30 <= len(rows("WKS-FIN-0042", "Windows.System.Pslist")) <= 300
    assert 20 <= len(rows("DC-01", "Windows.Network.Netstat")) <= 300
    assert 20 <= len(rows("DC-01", "Windows.EventLogs.RDPAuth")) <= 400
    assert 10 <= len(rows("lnx-db-01", "Linux.Sys.Pslist")) <= 300


def test_results_are_deterministic_per_seed_and_day():
    a = run("WKS-HR-0013", "Windows.System.Pslist")
    assert a == run("WKS-HR-0013", "Windows.System.Pslist")
    assert a == run("WKS-HR-0013", "Windows.System.Pslist", now=NOW + dt.timedelta(hours=3))
    assert a != run("WKS-HR-0013", "Windows.System.Pslist", seed=8)
    assert a != run("WKS-HR-0013", "Windows.System.Pslist", now=NOW + dt.timedelta(days=1))


def test_pslist_regexes_filter():
    every = rows("WKS-ENG-0108", "Windows.System.Pslist")
    svchost = rows("WKS-ENG-0108", "Windows.System.Pslist", {"ProcessRegex": "^SVCHOST"})
    assert svchost and len(svchost) < len(every)
    assert all(r["Name"] == "svchost.exe" for r in svchost)
    system = rows("WKS-ENG-0108", "Windows.System.Pslist", {"UsernameRegex": "SYSTEM"})
    assert {r["Username"] for r in system} == {"NT AUTHORITY\\SYSTEM"}
    unsigned = rows("WKS-ENG-0108", "Windows.System.Pslist", {"UntrustedAuthenticode": "Y"})
    assert all(r["Authenticode"]["Trusted"] != "trusted" and r["Exe"] for r in unsigned)
    assert rows("lnx-web-01", "Linux.Sys.Pslist", {"processRegex": "nginx"})[0]["Name"] == "nginx"


def test_file_finder_glob_hash_and_upload():
    host = "WKS-HR-0013"
    assert rows(host, "Windows.Search.FileFinder") == []  # default glob: C:/Users/SomeUser/*
    docs = rows(host, "Windows.Search.FileFinder",
                {"SearchFilesGlobTable": "Glob\nC:/Users/*/Documents/*.docx\n"})
    assert docs and all(r["OSPath"].endswith(".docx") for r in docs)
    assert all(r["Upload"] is None and r["Hash"] is None for r in docs)
    single = rows(host, "Windows.Search.FileFinder", {"Glob": "C:\\Users\\**\\*.xlsx"})
    assert single and all(r["OSPath"].endswith(".xlsx") for r in single)
    out = run(host, "Windows.Search.FileFinder",
              {"Glob": "C:/Users/*/Documents/*.docx", "Upload_File": "Y", "Calculate_Hash": "Y"})
    found = out.results["Windows.Search.FileFinder"]
    assert len(out.uploads) == len(found) == len(docs)
    for row, up in zip(found, out.uploads, strict=True):
        assert row["Upload"]["Size"] == row["Size"] == len(up.data)
        assert row["Upload"]["sha256"] == row["Hash"]["SHA256"]
    ntfs = rows(host, "Windows.Search.FileFinder", {"Glob": "C:/Users/*/NTUSER.DAT",
                                                     "Accessor": "ntfs"})
    assert ntfs and ntfs[0]["Inode"] and ntfs[0]["Data"]["mft"] == ntfs[0]["Inode"]


def test_services_hash_switches_and_regex():
    plain = rows("DC-01", "Windows.System.Services", {"NameRegex": "^DNS$"})
    assert len(plain) == 1 and plain[0]["HashServiceExe"] is None
    hashed = rows("DC-01", "Windows.System.Services",
                  {"NameRegex": "^DNS$", "Calculate_hashes": "Y", "CertificateInfo": "Y"})
    assert set(hashed[0]["HashServiceExe"]) == {"MD5", "SHA1", "SHA256"}
    assert hashed[0]["CertinfoServiceExe"]["Trusted"] == "trusted"


def test_netstat_and_rdp_filters():
    v4 = run("lnx-web-01", "Linux.Network.Netstat").results["Linux.Network.Netstat/TCP4"]
    listening = run("lnx-web-01", "Linux.Network.Netstat", {"StateRegex": "LISTEN"})
    assert 0 < len(listening.results["Linux.Network.Netstat/TCP4"]) < len(v4)
    every = rows("SRV-SQL-01", "Windows.EventLogs.RDPAuth")
    assert not any(r["UserName"].endswith("$") for r in every)
    with_machines = rows("SRV-SQL-01", "Windows.EventLogs.RDPAuth", {"UserNameWhitelist": ""})
    assert any(r["UserName"].endswith("$") for r in with_machines)
    after = rows("SRV-SQL-01", "Windows.EventLogs.RDPAuth", {"DateAfter": "2026-12-02T00:00:00Z"})
    assert after and all(r["EventTime"] > dt.datetime(2026, 12, 2, tzinfo=dt.UTC)
                         for r in after)


def test_failing_artifact_sets_error():
    out = run("SRV-WEB-01", "Windows.EventLogs.RDPAuth")
    assert out.error and "Security.evtx" in out.error
    assert any(line.startswith("ERROR:parse_evtx") for line in out.logs)


def test_generic_client_info_per_os():
    linux = run("lnx-db-01", "Generic.Client.Info")
    assert set(linux.results) == {"Generic.Client.Info/BasicInformation",
                                  "Generic.Client.Info/DetailedInfo",
                                  "Generic.Client.Info/LinuxInfo"}
    basic = linux.results["Generic.Client.Info/BasicInformation"][0]
    c = HOSTS["lnx-db-01"]
    assert basic["Platform"] + basic["PlatformVersion"] == c.release
    assert basic["MACAddresses"] == c.mac_addresses and basic["Fqdn"] == c.fqdn


def test_stats_events_and_server_health():
    c = HOSTS["DC-01"]
    stats = CATALOG["Generic.Client.Stats"]
    window = event_rows(c, stats, NOW - dt.timedelta(minutes=10), NOW)
    assert 55 <= len(window) <= 61
    assert list(window[0]) == ["Timestamp", "CPU", "RSS", "CPUPercent", "_ts"]
    assert all(b["CPU"] > a["CPU"] and 9 < b["Timestamp"] - a["Timestamp"] < 11
               for a, b in itertools.pairwise(window))
    half = event_rows(c, stats, NOW - dt.timedelta(minutes=5), NOW)
    assert half == window[-len(half):]  # overlapping windows agree
    offline = HOSTS["WKS-FIN-0061"]
    assert event_rows(offline, stats, NOW - dt.timedelta(hours=1), NOW) == []
    health = server_rows(CATALOG["Server.Monitor.Health"], {}, now=NOW)
    prom = health.results["Server.Monitor.Health/Prometheus"]
    assert len(prom) == 360
    assert list(prom[0]) == ["TotalFrontends", "CPUPercent", "MemoryUse",
                             "client_comms_current_connections", "_ts"]


def test_bulk_pslist_rows_fast_and_small():
    sample = list(bulk_pslist_rows(2000, seed=7))
    assert sample == list(bulk_pslist_rows(2000, seed=7))
    assert len(sample[0]) == 14 and set(sample[0]["Hash"]) == {"MD5", "SHA1", "SHA256"}
    size = len(dumps_rows(sample)) / len(sample)
    assert 250 < size < 700
    count = 300_000
    start = time.perf_counter()
    for _ in bulk_pslist_rows(count, seed=7):
        pass
    rate = count / (time.perf_counter() - start)
    assert rate > 50_000, rate
