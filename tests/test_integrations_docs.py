"""The Python examples of docs/report.md and docs/integrations.md run as written."""

import re
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[1] / "docs"
# Section of docs/integrations.md -> the module its example needs.
SECTIONS = {"Hugging Face `datasets`": "datasets", "datatrove": "datatrove", "Ray Data": "ray"}


def python_blocks(text: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", text, flags=re.S)


def section(text: str, title: str) -> str:
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", text, flags=re.S | re.M)
    assert match, f"no section {title!r}"
    return match.group(1)


def run_blocks(blocks: list[str], where: Path) -> None:
    assert blocks, f"{where} has no Python example"
    for block in blocks:
        exec(compile(block, str(where), "exec"), {})


def test_report_example(capsys):
    pytest.importorskip("matplotlib")
    run_blocks(python_blocks((DOCS / "report.md").read_text("utf-8")), DOCS / "report.md")
    assert capsys.readouterr().out.strip().endswith("index.html")


# The Ray example starts a real Ray instance: the slow tier's.
EXAMPLES = [pytest.param(title, module, marks=[pytest.mark.slow] if module == "ray" else [])
            for title, module in SECTIONS.items()]


@pytest.mark.parametrize("title, module", EXAMPLES)
def test_integration_example(title, module, request):
    pytest.importorskip(module)
    if module == "ray":
        request.getfixturevalue("loopback_ray_init")
    text = section((DOCS / "integrations.md").read_text("utf-8"), title)
    run_blocks(python_blocks(text), DOCS / "integrations.md")
