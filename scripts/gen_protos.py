#!/usr/bin/env python3
"""Generate velonb/_proto/ from protos/*.proto (run with --check to verify they are in sync).

The generated modules are rewritten in two ways, and only these two:

* messages are registered in velonb's own descriptor pool (``velonb/_proto/_pool.py``) instead of
  protobuf's default pool, so velonb can be imported next to pyvelociraptor, whose generated code
  defines the same ``proto.*`` message names in the default pool;
* imports between the generated modules are made absolute (``from velonb._proto import ...``).

The package stays ``proto`` and the service ``API``, so the method paths on the wire are exactly
``/proto.API/Query`` and friends.
"""

from __future__ import annotations

import argparse
import difflib
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROTO_DIR = ROOT / "protos"
OUT_DIR = ROOT / "velonb" / "_proto"
HEADER = "# Generated from protos/ by scripts/gen_protos.py; do not edit by hand.\n"
POOL_MODULE = '''"""The descriptor pool of velonb's generated messages (not protobuf's default)."""

from google.protobuf import descriptor_pool

POOL = descriptor_pool.DescriptorPool()
'''
INIT_MODULE = '''"""Generated protobuf/gRPC modules for the Velociraptor API subset in protos/."""
'''


def _rewrite(text: str, modules: list[str]) -> str:
    text = text.replace(
        "_descriptor_pool.Default().AddSerializedFile(",
        "_velonb_pool.POOL.AddSerializedFile(",
    )
    if "_velonb_pool.POOL" in text:
        text = text.replace(
            "from google.protobuf.internal import builder as _builder\n",
            "from google.protobuf.internal import builder as _builder\n"
            "from velonb._proto import _pool as _velonb_pool\n",
        )
    for module in modules:
        text = re.sub(
            rf"^import {module} as (\w+)$",
            rf"from velonb._proto import {module} as \1",
            text,
            flags=re.MULTILINE,
        )
    return HEADER + text


def generate() -> dict[str, str]:
    """Run protoc on protos/ and return {file name: rewritten content}."""
    protos = sorted(p.name for p in PROTO_DIR.glob("*.proto"))
    modules = [p.removesuffix(".proto") + "_pb2" for p in protos]
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [
            sys.executable, "-m", "grpc_tools.protoc", f"-I{PROTO_DIR}",
            f"--python_out={tmp}", f"--pyi_out={tmp}", f"--grpc_python_out={tmp}", *protos,
        ]
        subprocess.run(cmd, check=True)
        files: dict[str, str] = {"__init__.py": INIT_MODULE, "_pool.py": POOL_MODULE}
        for path in sorted(Path(tmp).iterdir()):
            text = path.read_text()
            if path.name.endswith("_pb2_grpc.py") and "class " not in text:
                continue  # a .proto without services yields an empty module
            files[path.name] = _rewrite(text, modules)
    return files


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if velonb/_proto is stale")
    args = parser.parse_args()
    files = generate()
    if args.check:
        stale = []
        on_disk = {p.name for p in OUT_DIR.iterdir() if p.is_file()} if OUT_DIR.exists() else set()
        for name in sorted(set(files) | on_disk):
            want = files.get(name)
            path = OUT_DIR / name
            have = path.read_text() if path.exists() else None
            if want != have:
                stale.append(name)
                if want and have:
                    diff = difflib.unified_diff(
                        have.splitlines(True), want.splitlines(True), name, name
                    )
                    sys.stdout.writelines(diff)
        if stale:
            print(f"velonb/_proto is out of date ({', '.join(stale)}): run scripts/gen_protos.py")
            return 1
        print("velonb/_proto matches protos/")
        return 0
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    for stale_file in OUT_DIR.iterdir():
        if stale_file.is_file() and stale_file.name not in files:
            stale_file.unlink()
    for name, text in files.items():
        (OUT_DIR / name).write_text(text)
    print(f"wrote {len(files)} files to {OUT_DIR.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
