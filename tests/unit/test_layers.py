"""pywg's Python layers import only downwards: _protocol (the sans-I/O core) nothing of the
others, _config only _protocol, _driver not the tools, _api (the public API's implementation)
the driver and what is under it but not the tools, and nothing but pywg/__init__.py imports
_api. Read from the source, so a new import that breaks the layering fails here, whatever
the tests exercise."""

import ast
from pathlib import Path

PYWG = Path(__file__).parents[2] / "pywg"
# A layer may import from itself and the layers listed.
ALLOWED = {
    "_protocol": {"_protocol", "_constants", "_crypto"},
    "_config": {"_config", "_protocol", "_constants"},
    "_driver": {"_driver", "_config", "_protocol", "_constants", "_wgdp"},
    "_api": {"_api", "_driver", "_config", "_protocol", "_constants"},
    "_tools": {"_tools", "_driver", "_config", "_protocol", "_constants"},
}


def imported_layers(path: Path) -> set[str]:
    layers = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names = [node.module or ""] if isinstance(node, ast.ImportFrom) else (
            [a.name for a in node.names] if isinstance(node, ast.Import) else [])
        for name in names:
            parts = name.split(".")
            if parts[0] == "pywg" and len(parts) > 1:
                layers.add(parts[1])
    return layers


def test_each_layer_imports_only_downwards() -> None:
    for layer, allowed in ALLOWED.items():
        for path in sorted((PYWG / layer).rglob("*.py")):
            wrong = imported_layers(path) - allowed
            assert not wrong, f"{path.relative_to(PYWG)} imports {sorted(wrong)}"


def test_each_c_module_has_one_importer() -> None:
    """The data plane's module belongs to the driver's datapath.py, the handshake's
    cryptography to the protocol core's crypto.py: everything else goes through them."""
    owners = {"_wgdp": PYWG / "_driver" / "datapath.py",
              "_crypto": PYWG / "_protocol" / "crypto.py"}
    for path in sorted(PYWG.rglob("*.py")):
        for module, owner in owners.items():
            if module in imported_layers(path):
                assert path == owner, f"{path.relative_to(PYWG)} imports pywg.{module}"
    assert all(module in imported_layers(owner) for module, owner in owners.items())


def test_only_the_package_imports_the_api() -> None:
    importers = [path.relative_to(PYWG) for path in sorted(PYWG.rglob("*.py"))
                 if "_api" in imported_layers(path) and path.parent.name != "_api"]
    assert importers == [Path("__init__.py")]


def test_the_check_sees_imports() -> None:
    assert imported_layers(PYWG / "_driver" / "device.py") >= {"_protocol", "_config"}
    assert imported_layers(PYWG / "_api" / "device.py") >= {"_driver", "_config"}
