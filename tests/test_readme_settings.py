"""The README's configuration table is checked against the code: every setting the gateway reads is in it."""

from __future__ import annotations

import re
from pathlib import Path

from tests.helpers import REPO

#: Environment variables by their shape: the gateway's own prefixes and the few standard names it reads.
SETTING = re.compile(
    r"""["'](?P<name>(?:ZOHO|GATEWAY|GUNICORN)_[A-Z0-9_]+|SANDBOX_PORT|PROMETHEUS_MULTIPROC_DIR|REQUESTS_CA_BUNDLE"""
    r"""|CURL_CA_BUNDLE|WEB_CONCURRENCY|HOST|PORT)["']"""
)
#: Where production reads its settings; the simulator (zoho_gateway/sandbox) has knobs of its own.
SOURCES = ["app.py", "wsgi.py", "gunicorn.conf.py", "zoho_gateway"]


def settings_read_by_the_code() -> set[str]:
    names: set[str] = set()
    constants: set[str] = set()
    for source in SOURCES:
        path = REPO / source
        files = [path] if path.is_file() else [p for p in path.rglob("*.py") if "sandbox" not in p.parts]
        for file in files:
            text = file.read_text()
            names.update(match["name"] for match in SETTING.finditer(text))
            # A Python constant named like a setting (listed in __all__, say) is not one.
            constants.update(re.findall(r"^([A-Z][A-Z0-9_]+)\s*[:=]", text, re.MULTILINE))
    return names - constants


def configuration_table() -> str:
    readme = (REPO / "README.md").read_text()
    start = readme.index("## Configuration")
    end = readme.index("\n## ", start + 1)
    return readme[start:end]


def test_every_setting_the_code_reads_is_in_the_readme_table() -> None:
    table = configuration_table()
    documented = set(re.findall(r"`([A-Z][A-Z0-9_]+)`", table))
    missing = sorted(settings_read_by_the_code() - documented)
    assert not missing, f"settings read by the code but missing from README's configuration table: {missing}"


def test_the_table_names_no_setting_the_code_does_not_read() -> None:
    table = configuration_table()
    rows = [line for line in table.splitlines() if line.startswith("| `")]
    first_cells = [row.split("|")[1] for row in rows]
    documented = {name for cell in first_cells for name in re.findall(r"`([A-Z][A-Z0-9_]+)`", cell)}
    # The proxy variables are read by requests itself, from the process environment.
    stale = sorted(documented - settings_read_by_the_code() - {"HTTPS_PROXY", "HTTP_PROXY", "NO_PROXY"})
    assert not stale, f"README's configuration table names settings nothing reads: {stale}"


def test_sources_exist() -> None:
    for source in SOURCES:
        assert Path(REPO / source).exists(), source
