"""The project's own ``.importlinter`` contracts must fail on a forbidden import (a check that cannot
fail is a defect) and pass on the allowed ones.

Runs the real ``lint-imports`` with the real contracts (layers, independence, app boundaries) on a
throwaway tree that has every module the contracts name, plus ``services``/``selectors``/``events``/
``models``/``admin`` in each app. The clean tree imports down through every layer, through public
modules only, and must pass; each case below adds one import to it and must break a contract.
"""

import configparser
import itertools
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
APP_MODULES = ("services", "selectors", "events", "models", "admin")


def _real_config() -> configparser.ConfigParser:
    config = configparser.ConfigParser()
    config.read(REPO / ".importlinter")
    return config


def _lines(value: str) -> list[str]:
    return [line.strip() for line in value.splitlines() if line.strip() and not line.strip().startswith("#")]


def _layers(config: configparser.ConfigParser) -> list[list[str]]:
    """The layers contract's layers, top first, each a list of its modules."""
    [section] = [name for name in config.sections() if config[name].get("type") == "layers"]
    return [re.split(r"\s*[|:]\s*", line) for line in _lines(config[section]["layers"])]


def _apps(config: configparser.ConfigParser) -> set[str]:
    [section] = [name for name in config.sections() if config[name].get("type") == "app_boundaries"]
    return set(_lines(config[section]["apps"]))


def _write_module(root: Path, dotted: str, source: str = "") -> Path:
    """Create ``dotted`` as a package (every parent too) and return its ``__init__.py``."""
    path = root
    for part in dotted.split("."):
        path = path / part
        path.mkdir(exist_ok=True)
        if not (path / "__init__.py").exists():
            (path / "__init__.py").write_text("")
    init = path / "__init__.py"
    if source:
        init.write_text(init.read_text() + source)
    return init


def _tree(tmp_path: Path) -> Path:
    """The clean tree: each layer's first module imports every module of the next layer (an app through
    its services), so every allowed step down is exercised. Returns the tree's root."""
    config = _real_config()
    apps = _apps(config)
    root = tmp_path / "tree"
    root.mkdir()
    for app in apps:
        _write_module(root, app)
        for module in APP_MODULES:
            (root / app / f"{module}.py").write_text("")
    for layer in _layers(config):
        for module in layer:
            _write_module(root, module)
    # Modules other contracts name (e.g. the forbidden `cases.saga` → `cases.services`) exist too.
    for section in config.sections():
        for option in ("source_modules", "forbidden_modules"):
            for module in _lines(config[section].get(option, "")):
                if not (root.joinpath(*module.split(".")).with_suffix(".py")).exists():
                    _write_module(root, module)

    def importer(module: str) -> Path:
        return root / module / "services.py" if module in apps else _write_module(root, module)

    def imported(module: str) -> str:
        return f"{module}.services" if module in apps else module

    layers = _layers(config)
    for upper, lower in itertools.pairwise(layers):
        path = importer(upper[0])
        path.write_text(path.read_text() + "".join(f"import {imported(module)}\n" for module in lower))
    # The tree has none of the real tree's exceptions: an unmatched ignore_imports entry is no error here.
    for section in config.sections():
        if "ignore_imports" in config[section]:
            config[section]["unmatched_ignore_imports_alerting"] = "none"
    with open(root / ".importlinter", "w") as config_file:
        config.write(config_file)
    return root


def _lint(root: Path) -> subprocess.CompletedProcess:
    lint_imports = Path(sys.executable).with_name("lint-imports")
    env = {**os.environ, "PYTHONPATH": f"{root}{os.pathsep}{REPO}"}
    return subprocess.run([str(lint_imports)], cwd=root, env=env, capture_output=True, text=True, timeout=120)


def _add_import(root: Path, importer: str, statement: str) -> None:
    path = root.joinpath(*importer.split(".")).with_suffix(".py")
    if not path.exists():
        path = _write_module(root, importer)
    path.write_text(path.read_text() + statement + "\n")


def test_the_real_config_has_layers_and_independence_contracts():
    types = {_real_config()[name].get("type") for name in _real_config().sections()}
    assert {"layers", "independence", "app_boundaries"} <= types
    assert [layer[0] for layer in _layers(_real_config())][1:-1] == [
        "agent",
        "review",
        "operators",
        "cases",
        "booking",
        "policies",
        "audit",
    ]


def test_the_clean_tree_passes(tmp_path):
    result = _lint(_tree(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("importer", "statement", "expected"),
    [
        # upward, each kind of today's turned-around imports
        ("notifications.services", "from cases import selectors", "notifications is not allowed to import cases"),
        ("notifications.models", "import cases.models", "notifications is not allowed to import cases"),
        ("booking.models", "from cases.models import SubCase", "booking is not allowed to import cases"),
        ("audit.selectors", "from cases.selectors import case_get", "audit is not allowed to import cases"),
        ("cases.admin", "from operators import services", "cases is not allowed to import operators"),
        ("operators.services", "import agent.services", "operators is not allowed to import agent"),
        ("agent.services", "import nexa.urls", "agent is not allowed to import nexa.urls"),
        ("nexa.platform.auth", "import audit.services", "nexa.platform is not allowed to import audit"),
        # siblings
        ("notifications.services", "import policies.services", "notifications is not allowed to import policies"),
        ("policies.selectors", "from notifications import events", "policies is not allowed to import notifications"),
        # a private module of another app, even downward
        ("cases.services", "from audit import admin", "cases.services imports audit.admin"),
    ],
)
def test_a_forbidden_import_breaks_a_contract(tmp_path, importer, statement, expected):
    root = _tree(tmp_path)
    _add_import(root, importer, statement)
    result = _lint(root)
    assert result.returncode == 1, result.stdout + result.stderr
    assert expected in result.stdout, result.stdout
