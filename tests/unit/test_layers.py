"""pywg's Python layers import only downwards: _protocol (the sans-I/O core) nothing of the
others, _config only _protocol, _driver not the tools. Read from the source, so a new import
that breaks the layering fails here, whatever the tests exercise."""

import ast
from pathlib import Path

PYWG = Path(__file__).parents[2] / "pywg"
# A layer may import from itself and the layers listed.
ALLOWED = {
    "_protocol": {"_protocol", "_constants"},
    "_config": {"_config", "_protocol", "_constants"},
    "_driver": {"_driver", "_config", "_protocol", "_constants", "_wgdp"},
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


def test_the_check_sees_imports() -> None:
    assert imported_layers(PYWG / "_driver" / "device.py") >= {"_protocol", "_config"}
