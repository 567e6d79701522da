"""The package's layout (docs/layout.md): layers import only downward; modules stay small."""

import ast
import pathlib

import pytest

SRC = pathlib.Path(__file__).resolve().parents[1] / "src" / "vmonf_jax"
MAX_LINES = 400

# Lowest first. A module may import from its own layer and the layers below it, never above.
LAYERS = [
    ("base", {"validation", "chunked", "hygiene", "relations", "parallel", "metrics",
              "preprocess", "dequantization", "data"}),
    ("files", {"files"}),
    ("model", {"model"}),
    ("spec", {"spec"}),
    ("train", {"train"}),
    ("persist", {"persist"}),
    ("fitted", {"inference", "mapped", "plotting"}),
    ("estimator", {"estimator"}),
    ("cli", {"cli"}),
    ("public name", {"flows"}),  # `vmonf_jax.flows` (API.md): the library uses model.flows
]
RANK = {part: i for i, (_, parts) in enumerate(LAYERS) for part in parts}
# Inside model/: the layers know the networks and distrax, nothing above them.
BIJECTORS_MAY_IMPORT = {"model.bijectors", "model._distrax", "model.nets"}


def _modules():
    for path in sorted(SRC.rglob("*.py")):
        parts = path.relative_to(SRC).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        yield path, ".".join(parts)


def _imports(path, name):
    """The ``vmonf_jax`` modules ``path`` imports (anywhere in it), without the prefix."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against the importing package
                base = package.split(".") if package else []
                base = base[:len(base) - node.level + 1]
                mod = ".".join(["vmonf_jax", *base, *([node.module] if node.module else [])])
            else:
                mod = node.module or ""
            found.add(mod)
            found |= {f"{mod}.{a.name}" for a in node.names}  # `from pkg import module`
    return {m.removeprefix("vmonf_jax.") for m in found
            if m.startswith("vmonf_jax.") and m.removeprefix("vmonf_jax.")}


def _part(mod):
    return mod.split(".")[0]


def test_every_module_belongs_to_a_layer():
    missing = sorted(name for _, name in _modules() if name and _part(name) not in RANK)
    assert not missing, f"add these to LAYERS here and to docs/layout.md: {missing}"


def test_imports_go_downward_only():
    upward = []
    for path, name in _modules():
        if not name:  # the package's __init__: lazy names for the public API
            continue
        for mod in _imports(path, name):
            if _part(mod) in RANK and RANK[_part(mod)] > RANK[_part(name)]:
                upward.append(f"{name} imports {mod}")
    assert not upward, "\n".join(upward)


def test_bijectors_sit_below_the_rest_of_the_model():
    wrong = []
    for path, name in _modules():
        if name.startswith("model.bijectors"):
            wrong += [f"{name} imports {mod}" for mod in _imports(path, name)
                      if _part(mod) == "model" and mod != "model" and not any(
                          mod == ok or mod.startswith(ok + ".") for ok in BIJECTORS_MAY_IMPORT)]
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize("bad", ["from vmonf_jax.cli import main", "import vmonf_jax.estimator"])
def test_an_upward_import_is_caught(tmp_path, bad):
    path = tmp_path / "probe.py"
    path.write_text(bad + "\n")
    mods = _imports(path, "train.probe")
    assert any(RANK[_part(m)] > RANK["train"] for m in mods)


def test_no_module_over_the_line_limit():
    long = {name: n for path, name in _modules()
            if (n := len(path.read_text().splitlines())) > MAX_LINES}
    assert not long, f"split by concept (docs/layout.md): {long}"


def test_flows_keeps_its_public_module_name():
    import vmonf_jax.flows
    from vmonf_jax.flows import realnvp

    import vmonf_jax.model.flows
    from vmonf_jax import flows

    assert vmonf_jax.flows is flows is vmonf_jax.model.flows
    assert realnvp is vmonf_jax.model.flows.realnvp
