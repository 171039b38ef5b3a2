"""Every ```python block of README_decorators.md runs as written (as test_docs.py does for
README.md, which the section joins when it is merged)."""

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parent.parent / "README_decorators.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.DOTALL)
RUNNABLE = [block for block in BLOCKS if not block.lstrip().startswith("FlexCache(")]


def test_section_has_examples() -> None:
    assert len(RUNNABLE) >= 5


@pytest.mark.parametrize("block", RUNNABLE, ids=[f"block{i}" for i in range(len(RUNNABLE))])
def test_section_example_runs(block: str) -> None:
    exec(compile(block, str(README), "exec"), {"__name__": "readme_example"})
