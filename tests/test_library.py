"""The public API: ``import rdptrust`` and the README's library example, run as written."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import rdptrust
from fixtures.lab import LabFactory
from rdptrust.errors import UsageError

README = Path(__file__).resolve().parent.parent / "README.md"


def test_public_names_are_exported_and_documented() -> None:
    for name in rdptrust.__all__:
        value = getattr(rdptrust, name)
        if callable(value):
            assert value.__doc__, name
    with pytest.raises(AttributeError):
        _ = rdptrust.not_a_name  # type: ignore[attr-defined]


async def test_probe_diagnose_scan_and_fixes_on_the_lab(lab_factory: LabFactory) -> None:
    # Given a default self-signed host whose root list black-holes
    lab = await lab_factory(cert="self-signed", root_list="blackhole", count=3)
    # When a library user probes, diagnoses and scans it
    probe = await rdptrust.probe(str(lab.target), enumerate=False)
    options = rdptrust.AssessOptions(
        root_list_url=lab.root_list_url, fetch_timeout_s=1.0, known_hosts=Path("/nonexistent/kh")
    )
    result = await rdptrust.diagnose(lab.target, options)
    seen = [item async for item in rdptrust.scan([str(t) for t in lab.targets], options)]
    # Then each call gives the typed result the commands print
    assert isinstance(probe, rdptrust.ProbeResult)
    assert probe.tls is not None
    assert isinstance(result, rdptrust.Assessment)
    assert result.verdict is rdptrust.Verdict.CRITICAL
    # WINDOWS.md §2: the trusted list, the disallowed list and pin rules, 15 s each
    assert result.predicted_stall_s == 45.0
    assert "method1-trust-host-certificate" in {f.id for f in rdptrust.fixes_for(result)}
    assert sorted(item.target for item in seen) == sorted(lab.targets)
    assert {item.predicted_stall_s for item in seen} == {45.0}


async def test_a_malformed_target_is_a_usage_error() -> None:
    with pytest.raises(UsageError):
        await rdptrust.probe("host:99999")


def test_the_readme_example_runs_as_written(tmp_path: Path) -> None:
    match = re.search(
        r"<!-- library-example:begin -->\n```python\n(.*?)```\n<!-- library-example:end -->",
        README.read_text(encoding="utf-8"),
        re.S,
    )
    assert match, "README has no library example between its markers"
    script = tmp_path / "example.py"
    script.write_text(match.group(1), encoding="utf-8")
    proc = subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        # the network guard stays on (inherited); the pinned store is the test's own
        env={**os.environ, "HOME": str(tmp_path), "XDG_DATA_HOME": str(tmp_path)},
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("TLS: TLSv1.")
    assert lines[1].startswith("critical 45.0 ['predicted-stall'")
    assert any(line.startswith("fix: Method 1") for line in lines)
