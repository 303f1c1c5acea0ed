"""Generic.Client.Info: the interrogation artifact (several sources, per-OS preconditions)."""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any

from velonb.emulator.world.fleet import AGENT_BUILDS
from velonb.emulator.world.results_common import rng_for, ts
from velonb.emulator.world.results_winsys import profiles

if TYPE_CHECKING:
    from velonb.emulator.world.results import Ctx

_FAMILY = {"ubuntu": "debian", "debian": "debian", "redhat": "rhel", "darwin": "Standalone"}


def _info(ctx: Ctx) -> dict[str, Any]:
    c = ctx.client
    rng = rng_for(ctx.seed, c.client_id, "info")
    windows = c.system == "windows"
    start = ts(c.last_seen_at / 1e6 - rng.uniform(3600, 5 * 86400))
    exe = ("C:\\Program Files\\Velociraptor\\Velociraptor.exe" if windows else
           "/usr/local/bin/velociraptor")
    family = ("Server" if "Server" in c.platform else "Standalone Workstation") if windows else \
        _FAMILY.get(c.platform, c.platform)
    return {
        "Hostname": c.hostname,
        "Uptime": max(0, int(ctx.now.timestamp()) - c.boot_time),
        "BootTime": c.boot_time,
        "OS": c.system,
        "Platform": c.platform,
        "PlatformFamily": family,
        "PlatformVersion": c.platform_version,
        "KernelVersion": c.kernel_version,
        "VirtualizationSystem": "vmware" if c.role not in ("workstation", "laptop") else "",
        "VirtualizationRole": "guest" if c.role not in ("workstation", "laptop") else "",
        "CompilerVersion": "go1.23.2",
        "HostID": str(_uuid(c.client_id)),
        "Exe": exe,
        "CWD": "C:\\Windows\\system32" if windows else "/",
        "IsAdmin": True,
        "ClientStart": start,
        "LocalTZ": "UTC" if not windows else "GMT Standard Time",
        "LocalTZOffset": 0,
        "Fqdn": c.fqdn,
        "Architecture": c.machine,
    }


def _uuid(seed: str) -> str:
    h = hashlib.md5(seed.encode()).hexdigest()  # noqa: S324 - a stable id, not security
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:32]}"


def client_info(ctx: Ctx) -> None:
    """All sources of Generic.Client.Info that run on the client's OS."""
    c = ctx.client
    name = ctx.artifact.name
    build_time, run = AGENT_BUILDS.get(c.agent_version, ("", 0))
    ctx.emit("BasicInformation", [{
        "Name": "velociraptor",
        "BuildTime": build_time,
        "Version": c.agent_version,
        "build_url": f"https://github.com/Velocidex/velociraptor/actions/runs/{run}" if run
        else "",
        "install_time": c.first_seen_at - 120,
        "Labels": None,
        "Hostname": c.hostname,
        "OS": c.system,
        "Architecture": c.machine,
        "Platform": c.platform,
        "PlatformVersion": c.platform_version,
        "KernelVersion": c.kernel_version,
        "Fqdn": c.fqdn,
        "MACAddresses": list(c.mac_addresses),
    }])
    ctx.emit("DetailedInfo", [{"Param": k, "Value": v} for k, v in _info(ctx).items()])
    rng = rng_for(ctx.seed, c.client_id, "hw")
    memory = rng.choice([8, 16, 16, 32]) if c.role in ("workstation", "laptop") else \
        rng.choice([16, 32, 64])
    gateway = c.ip.rsplit(".", 1)[0] + ".1"
    if c.system == "linux":
        ctx.emit("LinuxInfo", [{
            "Computer Info": {"TotalPhysicalMemory": memory << 30,
                              "TotalFreeMemory": int((memory << 30) * rng.uniform(0.2, 0.6)),
                              "TotalSharedMemory": int(rng.uniform(1e7, 4e8)),
                              "TotalSwap": 2 << 30, "FreeSwap": int((2 << 30) * 0.9)},
            "Network Info": [{"Name": "ens160", "MACAddress": c.mac_addresses[0], "Up": True,
                              "PointToPoint": False,
                              "IPAddresses": [f"{c.ip}/24", "fe80::250:56ff:fe8a:1c2d/64"]},
                             {"Name": "docker0", "MACAddress": "02:42:8f:1a:0b:3c", "Up": False,
                              "PointToPoint": False, "IPAddresses": ["172.17.0.1/16"]}],
        }])
    else:
        ctx.log(f"{name}: Skipping query due to preconditions", source="LinuxInfo")
    if c.system == "windows":
        server = "Server" in c.platform
        role = ("Primary Domain Controller" if c.hostname == "DC-01" else
                "Backup Domain Controller") if c.role == "dc" else (
            "Member Server" if server else "Member Workstation")
        ctx.emit("WindowsInfo", [{
            "Computer Info": {"DNSHostName": c.hostname, "Name": c.hostname,
                              "Domain": c.domain, "TotalPhysicalMemory": memory << 30,
                              "DomainRole": role},
            "Network Info": {"Caption": "[00000001] vmxnet3 Ethernet Adapter" if server else
                             "[00000001] Intel(R) Ethernet Connection (16) I219-LM",
                             "IPAddresses": f"{c.ip}, fe80::{rng.getrandbits(16):x}:"
                                            f"{rng.getrandbits(16):x}:{rng.getrandbits(16):x}:"
                                            f"{rng.getrandbits(16):x}",
                             "IPSubnet": "255.255.255.0, 64", "MACAddress": c.mac_addresses[0]
                             .upper().replace("-", ":"),
                             "DefaultIPGateway": gateway, "DNSHostName": c.hostname,
                             "DNSServerSearchOrder": "10.10.0.10, 10.10.0.11"},
        }])
        ctx.emit("Users", [{"Name": r["Name"], "Description": r["Description"],
                            "LastLogin": r["Mtime"]}
                           for r in profiles(c, ctx.seed, ctx.now)])
    else:
        ctx.log(f"{name}: Skipping query due to preconditions", source="WindowsInfo")
        ctx.log(f"{name}: Skipping query due to preconditions", source="Users")


