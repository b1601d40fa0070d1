"""The source tree's layering, checked from the #include lines.

Every folder of src/ is a layer; a module is a .c file and its header. A
module may include modules of its own layer or of lower ones, never of a
higher one, and no two modules include each other (README.md, "Layout").
"""
import re
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src"
# Lowest first; main.c (src/ itself) is above every layer.
LAYERS = ["core", "http", "net", "egress", "front", "conf", "tools", ""]
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)


def layer_of(path):
    rel = path.relative_to(SRC)
    return rel.parts[0] if len(rel.parts) > 1 else ""


def module_of(path):
    rel = path.relative_to(SRC).with_suffix("")
    return str(rel)


def includes():
    """{module: set of modules it includes}, from its .c and .h files."""
    graph = {}
    for f in sorted(SRC.rglob("*.[ch]")):
        mod = module_of(f)
        deps = graph.setdefault(mod, set())
        for inc in INCLUDE.findall(f.read_text()):
            target = (SRC / inc)
            assert target.exists(), "%s includes %s, which is not in src/" % (f, inc)
            dep = module_of(target)
            if dep != mod:
                deps.add(dep)
    return graph


def rank(mod):
    layer = mod.split("/")[0] if "/" in mod else ""
    assert layer in LAYERS, "%s is in an unknown layer folder %r" % (mod, layer)
    return LAYERS.index(layer)


def test_every_folder_is_a_known_layer():
    folders = {p.name for p in SRC.iterdir() if p.is_dir()}
    assert folders == set(LAYERS) - {""}


def test_every_folder_says_what_it_holds():
    for layer in LAYERS[:-1]:
        readme = SRC / layer / "README.md"
        assert readme.exists() and "may include" in readme.read_text(), readme


def test_no_module_includes_a_higher_layer():
    bad = ["%s includes %s" % (m, d) for m, deps in includes().items() for d in deps
           if rank(d) > rank(m)]
    assert not bad, bad


def test_no_two_modules_include_each_other():
    g = includes()
    pairs = sorted({tuple(sorted((m, d))) for m, deps in g.items() for d in deps
                    if m in g.get(d, ())})
    assert not pairs, pairs


def test_includes_name_their_layer():
    """Quoted includes are always "layer/name.h", so a reader sees the layer."""
    for f in SRC.rglob("*.[ch]"):
        for inc in INCLUDE.findall(f.read_text()):
            assert "/" in inc, "%s: #include \"%s\" should name its folder" % (f, inc)
