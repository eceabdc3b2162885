"""The committed gRPC code in services/rpc is what proto/ generates."""

from pathlib import Path

from services.kernel.codegen import RPC_DIR, generate_rpc


def sources(folder: Path) -> dict[Path, str]:
    return {
        p.relative_to(folder): p.read_text()
        for p in folder.rglob("*")
        if p.suffix in {".py", ".pyi"}
    }


def test_committed_grpc_code_is_generated_from_the_protos(tmp_path: Path):
    generate_rpc(tmp_path)
    generated = sources(tmp_path)
    committed = sources(RPC_DIR)
    assert generated.keys() == committed.keys()
    stale = sorted(str(name) for name in generated if generated[name] != committed[name])
    assert not stale, f"services/rpc is stale ({stale}): run `make proto` and commit the result"
