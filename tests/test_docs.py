"""README and docs: links resolve, and every number a README cell quotes is in what it links to."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LINK = re.compile(r"\[((?:[^\[\]]|\[[^\[\]]*\])*)\]\(([^)\s]+)\)")  # text may hold [a, b]
NUMBER = re.compile(r"-?\d+(?:[.,]\d+)*")


def _slug_github(heading):
    text = heading.replace("`", "").strip().lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def _slug_mkdocs(heading):  # Python-Markdown's toc.slugify
    text = re.sub(r"[^\w\s-]", "", heading.replace("`", "")).strip().lower()
    return re.sub(r"[-\s]+", "-", text)


def _sections(path):
    """``{anchor: text of the section under that heading, up to the next one of its level}``."""
    lines = path.read_text().splitlines()
    heads = [(i, len(m.group(1)), m.group(2)) for i, line in enumerate(lines)
             if (m := re.match(r"(#+) (.*)", line))]
    out = {}
    for j, (i, level, title) in enumerate(heads):
        end = next((k for k, lv, _ in heads[j + 1:] if lv <= level), len(lines))
        assert _slug_github(title) == _slug_mkdocs(title), title  # same anchor both places
        out[_slug_github(title)] = "\n".join(lines[i:end])
    return out


def _readme_links():
    return LINK.findall((ROOT / "README.md").read_text())


def test_readme_links_resolve_on_github_and_in_the_site():
    local = [(text, target) for text, target in _readme_links() if "://" not in target]
    assert len(local) > 20
    for _, target in local:
        path, _, anchor = target.partition("#")
        assert (ROOT / path).exists(), target
        if anchor:
            assert anchor in _sections(ROOT / path), target


def test_every_number_in_the_results_table_is_in_the_section_it_links_to():
    readme = (ROOT / "README.md").read_text()
    start = readme.index("## Results")
    table = readme[start:readme.index("\n## ", start)]  # to the next section
    cells = [(text, target) for text, target in LINK.findall(table)]
    assert len(cells) >= 15
    for text, target in cells:
        path, _, anchor = target.partition("#")
        section = _sections(ROOT / path)[anchor] if anchor else (ROOT / path).read_text()
        for number in NUMBER.findall(text):
            assert number in section, f"{number} of {text!r} is not in {target}"


def test_readme_is_short_and_keeps_the_two_setup_commands():
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= 200
    assert "make pinwheel" in readme and "make test" in readme
    assert "load average" not in readme and " UTC" not in readme  # lab notes live in docs/
