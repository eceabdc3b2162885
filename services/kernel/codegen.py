"""Generated files that are committed: the gRPC code in `services/rpc` from `proto/`.

`make proto` runs this. The contract tests regenerate into a temporary folder and fail
when the committed files differ.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PROTO_DIR = ROOT / "proto"
RPC_DIR = ROOT / "services" / "rpc"
_RELATIVE = re.compile(r"^from los\.v1 import (\w+_pb2)", re.MULTILINE)


def generate_rpc(out: Path) -> None:
    """protoc with mypy stubs; imports between generated modules made relative (a package)."""
    out.mkdir(parents=True, exist_ok=True)
    plugins = Path(sys.executable).parent
    protos = sorted(str(p.relative_to(PROTO_DIR)) for p in PROTO_DIR.rglob("*.proto"))
    subprocess.run(
        [
            sys.executable, "-m", "grpc_tools.protoc", f"-I{PROTO_DIR}",
            f"--plugin=protoc-gen-mypy={plugins / 'protoc-gen-mypy'}",
            f"--plugin=protoc-gen-mypy_grpc={plugins / 'protoc-gen-mypy_grpc'}",
            f"--python_out={out}", f"--grpc_python_out={out}",
            f"--mypy_out={out}", f"--mypy_grpc_out={out}", *protos,
        ],
        check=True,
        cwd=PROTO_DIR,
    )  # fmt: skip
    for module in out.rglob("*_pb2*.py*"):
        module.write_text(_RELATIVE.sub(r"from . import \1", module.read_text()))
    for folder in (out, out / "los", out / "los" / "v1"):
        (folder / "__init__.py").touch()


if __name__ == "__main__":
    generate_rpc(RPC_DIR)
