"""The simulated fleet: a fixed roster of hosts in two orgs, with seeded details.

Hostnames, roles, labels and addresses are fixed (the planted incident refers to them); the seed
chooses MAC addresses, client ports, enrolment and last-seen times and boot times. Client ids are
derived from the org and hostname, so they never change with the seed.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import random
from dataclasses import dataclass
from typing import Any

from velonb.emulator.world.model import ROOT_ORG, ROOT_ORG_NAME, Client

__all__ = [
    "AGENT_BUILDS",
    "DOMAIN",
    "NETBIOS",
    "ORGS",
    "build_fleet",
    "client_id_for",
    "client_row",
    "day_start",
    "server_client_row",
]

ORGS: dict[str, str] = {ROOT_ORG: ROOT_ORG_NAME, "O1234": "Second Org"}

DOMAIN = "ad.meridianfs.local"  # the root org's AD domain
NETBIOS = "MERIDIAN"
SECOND_DOMAIN = "corp.harborline.local"  # org O1234 (a subsidiary with its own domain)

# version -> (build time, CI run number)
AGENT_BUILDS: dict[str, tuple[str, int]] = {
    "0.77.2": ("2026-08-20T23:41:07Z", 17125543210),
    "0.77.1": ("2026-07-02T05:12:44Z", 16012377511),
    "0.75.6": ("2025-12-11T02:03:19Z", 12244019834),
    "0.7.1": ("2023-12-06T10:55:31Z", 7113204471),
}

_WIN = {
    "w10": ("Microsoft Windows 10 Enterprise", "10.0.19045 Build 19045", "10.0.19045 Build 19045"),
    "w11": ("Microsoft Windows 11 Enterprise", "10.0.22631 Build 22631", "10.0.22631 Build 22631"),
    "s16": ("Microsoft Windows Server 2016 Standard", "10.0.14393 Build 14393",
            "10.0.14393 Build 14393"),
    "s19": ("Microsoft Windows Server 2019 Standard", "10.0.17763 Build 17763",
            "10.0.17763 Build 17763"),
    "s22": ("Microsoft Windows Server 2022 Datacenter", "10.0.20348 Build 20348",
            "10.0.20348 Build 20348"),
}
_UNIX = {
    "ubuntu22": ("linux", "ubuntu", "22.04", "5.15.0-126-generic"),
    "ubuntu24": ("linux", "ubuntu", "24.04", "6.8.0-49-generic"),
    "rhel9": ("linux", "redhat", "9.4", "5.14.0-427.42.1.el9_4.x86_64"),
    "debian12": ("linux", "debian", "12.8", "6.1.0-28-amd64"),
    "macos14": ("darwin", "darwin", "14.7.1", "23.6.0"),
}


@dataclass(frozen=True)
class _Host:
    hostname: str
    os: str  # a key of _WIN or _UNIX
    role: str
    labels: tuple[str, ...]
    ip: str
    users: tuple[str, ...] = ()
    agent: str = "0.77.2"
    offline_days: float = 0.0  # 0: online now
    enrolled_days: int = 400
    org: str = ROOT_ORG


_ROSTER: tuple[_Host, ...] = (
    _Host("WKS-FIN-0042", "w10", "workstation", ("finance", "vip"), "10.20.1.42", ("jbrennan",)),
    _Host("WKS-FIN-0057", "w11", "workstation", ("finance",), "10.20.1.57", ("mokafor",)),
    _Host("WKS-FIN-0061", "w11", "workstation", ("finance",), "10.20.1.61", ("tnguyen",),
          offline_days=4.3),
    _Host("WKS-HR-0013", "w10", "workstation", ("hr",), "10.20.2.13", ("lschmidt",)),
    _Host("WKS-ENG-0108", "w11", "workstation", (), "10.20.3.108", ("rdas",)),
    _Host("WKS-ENG-0112", "w10", "workstation", (), "10.20.3.112", ("pwalsh",), agent="0.7.1",
          offline_days=12.6, enrolled_days=900),
    _Host("WKS-IT-0007", "w11", "workstation", ("it",), "10.20.5.7", ("kpatel",)),
    _Host("DC-01", "s22", "dc", ("servers", "dc"), "10.10.0.10", enrolled_days=700),
    _Host("DC-02", "s19", "dc", ("servers", "dc"), "10.10.0.11", agent="0.77.1",
          enrolled_days=700),
    _Host("SRV-FS-01", "s19", "fileserver", ("servers", "fileserver"), "10.10.0.20",
          enrolled_days=650),
    _Host("SRV-WEB-01", "s16", "web", ("servers", "web"), "10.10.0.30", agent="0.75.6",
          enrolled_days=820),
    _Host("SRV-SQL-01", "s22", "sql", ("servers", "sql"), "10.10.0.31", enrolled_days=500),
    _Host("lnx-web-01", "ubuntu22", "web", ("linux", "servers", "web"), "10.10.1.40",
          ("deploy",)),
    _Host("lnx-db-01", "rhel9", "db", ("linux", "servers"), "10.10.1.41", ("dba",)),
    _Host("lnx-bastion-01", "debian12", "bastion", ("linux",), "10.10.1.5", ("ops",),
          agent="0.75.6"),
    _Host("MBP-CEO-01", "macos14", "laptop", ("vip",), "10.20.9.23", ("dharper",),
          offline_days=2.2, enrolled_days=210),
    # Org O1234 ("Second Org"): a subsidiary.
    _Host("HL-WKS-001", "w10", "workstation", ("office",), "172.16.10.21", ("agarcia",),
          org="O1234", enrolled_days=150),
    _Host("HL-WKS-002", "w11", "workstation", (), "172.16.10.22", ("bchen",), org="O1234",
          offline_days=6.1, enrolled_days=150),
    _Host("hl-app-01", "ubuntu24", "app", ("linux", "servers"), "172.16.20.5", ("svcapp",),
          org="O1234", enrolled_days=120),
)

_OUI = ("00:15:5d", "00:50:56", "3c:52:82", "f4:8e:38", "a4:bb:6d", "00:0c:29")


def client_id_for(hostname: str, org_id: str = ROOT_ORG) -> str:
    """The stable client id of ``hostname`` in ``org_id`` (``C.<16 hex>[-<ORGID>]``)."""
    digest = hashlib.sha256(f"{org_id}/{hostname.lower()}".encode()).hexdigest()[:16]
    return f"C.{digest}" if org_id == ROOT_ORG else f"C.{digest}-{org_id}"


def day_start(now: dt.datetime) -> dt.datetime:
    """Midnight UTC of ``now``'s date: the world's reference point for everything historic."""
    now = now.astimezone(dt.UTC) if now.tzinfo else now.replace(tzinfo=dt.UTC)
    return now.replace(hour=0, minute=0, second=0, microsecond=0)


def _mac(rng: random.Random, host: _Host) -> str:
    oui = _OUI[0] if host.role in ("dc", "fileserver", "web", "sql", "db", "app") else rng.choice(
        _OUI[2:])
    return oui + "".join(f":{rng.randrange(256):02x}" for _ in range(3))


def _client(host: _Host, seed: int, now: dt.datetime) -> Client:
    rng = random.Random(f"{seed}/{host.org}/{host.hostname}")
    ref = day_start(now)
    domain = DOMAIN if host.org == ROOT_ORG else SECOND_DOMAIN
    if host.os in _WIN:
        platform, version, kernel = _WIN[host.os]
        system = "windows"
        machine = "amd64"
    else:
        system, platform, version, kernel = _UNIX[host.os]
        machine = "arm64" if system == "darwin" else "amd64"
    macs = [_mac(rng, host)]
    if host.role in ("workstation", "laptop") and rng.random() < 0.5:
        macs.append(_mac(rng, host))  # Wi-Fi next to the wired NIC
    enrolled = ref - dt.timedelta(days=host.enrolled_days + rng.randrange(30),
                                  seconds=rng.randrange(86400))
    if host.offline_days:
        last_seen = ref - dt.timedelta(days=host.offline_days, seconds=rng.randrange(3600))
    else:
        last_seen = now - dt.timedelta(seconds=rng.uniform(1.0, 55.0))
    boot_days = rng.uniform(5.0, 24.0) if host.role not in ("workstation", "laptop") else \
        rng.uniform(4.0, 9.0)
    boot = (last_seen if host.offline_days else ref) - dt.timedelta(days=boot_days)
    build_time, _ = AGENT_BUILDS[host.agent]
    return Client(
        client_id=client_id_for(host.hostname, host.org),
        org_id=host.org,
        hostname=host.hostname,
        fqdn=f"{host.hostname}.{domain}",
        system=system,
        release=platform + version,
        machine=machine,
        mac_addresses=macs,
        last_ip=f"{host.ip}:{rng.randrange(49152, 65535)}",
        labels=list(host.labels),
        agent_version=host.agent,
        agent_build_time=build_time,
        first_seen_at=int(enrolled.timestamp()),
        last_seen_at=int(last_seen.timestamp() * 1_000_000),
        online=host.offline_days == 0,
        role=host.role,
        metadata={},
        platform=platform,
        platform_version=version,
        kernel_version=kernel,
        ip=host.ip,
        domain=domain,
        users=list(host.users),
        boot_time=int(boot.timestamp()),
    )


def build_fleet(seed: int = 7, now: dt.datetime | None = None) -> list[Client]:
    """Every org's clients, deterministic for (seed, now); root org first, then O1234.

    Everything but an online client's ``last_seen_at`` (a few seconds before ``now``) depends
    only on ``now``'s date.
    """
    now = dt.datetime.now(dt.UTC) if now is None else now
    if now.tzinfo is None:
        now = now.replace(tzinfo=dt.UTC)
    return [_client(h, seed, now) for h in _ROSTER]


def client_row(client: Client) -> dict[str, Any]:
    """The row ``clients()`` / ``client_info()`` returns for ``client`` (real key order)."""
    _, run = AGENT_BUILDS.get(client.agent_version, ("", 0))
    return {
        "client_id": client.client_id,
        "agent_information": {
            "version": client.agent_version,
            "name": "velociraptor",
            "build_time": client.agent_build_time,
            "build_url": f"https://github.com/Velocidex/velociraptor/actions/runs/{run}"
            if run else "",
        },
        "os_info": {
            "system": client.system,
            "hostname": client.hostname,
            "release": client.release,
            "machine": client.machine,
            "fqdn": client.fqdn,
            "mac_addresses": list(client.mac_addresses),
        },
        "first_seen_at": client.first_seen_at,
        "last_seen_at": client.last_seen_at,
        "last_ip": client.last_ip,
        "last_interrogate_flow_id": client.last_interrogate_flow_id,
        "last_interrogate_artifact_name": client.last_interrogate_artifact_name,
        "labels": list(client.labels),
        # indexing/clients.go _FastGetApiClient never fills these three (they stay 0)
        "last_hunt_timestamp": 0,
        "last_event_table_version": 0,
        "last_label_timestamp": 0,
        "in_flight_flows": dict(client.in_flight_flows),
    }


def server_client_row() -> dict[str, Any]:
    """``clients(client_id='server')`` / ``client_info('server')``: the client info store
    answers for the server itself with a record holding only its id as id, hostname and fqdn
    (``services/client_info/storage.go`` _GetRecord)."""
    return {
        "client_id": "server",
        "agent_information": {"version": "", "name": "", "build_time": "", "build_url": ""},
        "os_info": {"system": "", "hostname": "server", "release": "", "machine": "",
                    "fqdn": "server", "mac_addresses": []},
        "first_seen_at": 0,
        "last_seen_at": 0,
        "last_ip": "",
        "last_interrogate_flow_id": "",
        "last_interrogate_artifact_name": "",
        "labels": [],
        "last_hunt_timestamp": 0,
        "last_event_table_version": 0,
        "last_label_timestamp": 0,
        "in_flight_flows": {},
    }
