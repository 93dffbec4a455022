"""docs/security.md names the test behind each line of the threat model: every name must exist, and every
row must name at least one test, so the page cannot drift from the suite."""

import re
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parents[2]
SECURITY_DOC = BASE_DIR / "docs" / "security.md"


def threat_rows() -> list[tuple[str, str]]:
    """(threat, test cell) of every table row under a heading, header and rule rows excluded."""
    rows = []
    for line in SECURITY_DOC.read_text().splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if not line.startswith("|") or len(cells) < 3 or set(cells[0]) <= {"-"} or cells[0] == "threat":
            continue
        rows.append((cells[0], cells[-1]))
    return rows


def referenced_tests(cell: str) -> list[tuple[str, str | None]]:
    """(file, test name or None) for every `tests/…py::name`, `::name` (same file as the last one) and
    `tests/…py` (the whole file) in a cell."""
    found, current = [], None
    for reference in re.findall(r"`([^`]+)`", cell):
        path, _, name = reference.partition("::")
        if path.startswith("tests/") and path.endswith(".py"):
            current = path
        elif path:
            continue  # code, not a test reference (a route, a setting)
        if current is None:
            continue
        found.append((current, name.split("[")[0] or None))
    return found


def test_every_row_names_a_test_and_every_named_test_exists():
    rows = threat_rows()
    assert len(rows) >= 30, "the threat model lost its rows"
    problems = []
    for threat, cell in rows:
        references = referenced_tests(cell)
        if not references:
            problems.append(f"no test for: {threat}")
        for path, name in references:
            source = BASE_DIR / path
            if not source.is_file():
                problems.append(f"{path} does not exist ({threat})")
            elif name and not re.search(rf"def {name}\(", source.read_text()):
                problems.append(f"{path}::{name} does not exist ({threat})")
    assert not problems, "\n".join(problems)
