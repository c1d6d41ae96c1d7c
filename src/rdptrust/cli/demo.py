"""``rdptrust demo``: the whole story on the built-in lab, in a few seconds."""

from __future__ import annotations

import tempfile
import time
from dataclasses import replace
from pathlib import Path

import click
from rich.console import Console
from rich.rule import Rule
from rich.text import Text

from rdptrust.cli.common import FiniteRange, run
from rdptrust.cli.common import console as make_console
from rdptrust.engine import AssessOptions, assess
from rdptrust.fix.advice import fixes_for
from rdptrust.fix.method1 import write_trust_bundle
from rdptrust.lab.pki import ResponderMode
from rdptrust.lab.runner import Lab, LabConfig
from rdptrust.model.assessment import Assessment
from rdptrust.model.wire import SecurityProtocol
from rdptrust.pki.pinning import KnownHosts, pin_from_certificate
from rdptrust.pki.windows import ctl_directory
from rdptrust.report.demo import demo_document
from rdptrust.report.diagnosis import render_diagnosis
from rdptrust.report.jsonform import dumps

#: Section rules are at most this wide: into a pipe the console is as wide as a line gets.
RULE_WIDTH = 100


def _rule(console: Console, title: str) -> None:
    console.print(Rule(title), width=min(console.width, RULE_WIDTH))


async def _demo(
    console: Console, fetch_timeout: float, work: Path
) -> tuple[Assessment, Assessment, Assessment]:
    # NLA required, as on a default Windows host since Server 2012: the stall is the story
    config = LabConfig(root_list=ResponderMode.parse("blackhole"), require=SecurityProtocol.HYBRID)
    async with Lab(config) as lab:
        target = lab.target
        _rule(console, "The setting")
        console.print(
            Text(
                f"An RDP host at {target} presents Windows' default self-signed certificate"
                f" ({lab.credentials.leaf.subject.rfc4514_string()}, SHA-256"
                f" {lab.certificate_sha256}). The client's network black-holes the"
                " Windows Update certificate trust lists (trusted roots, disallowed"
                " certificates, pin rules), as many firewalls and proxies do:\n"
                f"  {ctl_directory(lab.root_list_url, None)}\n"
                f"(both run here on loopback; rdptrust stops waiting for a URL after"
                f" {fetch_timeout:g} s and counts a blocked list fetch as the 15 s that field"
                " reports give: an assumption, marked so below)."
            )
        )
        store = work / "known_hosts.json"
        options = AssessOptions(
            fetch_timeout_s=fetch_timeout,
            root_list_url=lab.root_list_url,
            known_hosts=store,
            probe_timeout_s=5.0,
        )
        _rule(console, "Step 1: rdptrust diagnose, as a Windows client sees the host")
        before = await assess(target, options)
        render_diagnosis(before, console, fixes_for(before))

        _rule(console, "Step 2: Method 1 with rdptrust trust (pin the host's certificate)")
        leaf = lab.credentials.leaf
        known = KnownHosts.load(store)
        known.add(pin_from_certificate(target, leaf))
        known.save()
        files = write_trust_bundle(work / "trust", target, leaf)
        console.print(Text(f"Pinned {target} in {store}"))
        console.print(Text("Wrote what Windows clients need (thumbprint checked before import):"))
        for path in files.values():
            console.print(Text(f"  {path}"))

        _rule(console, "Step 3: rdptrust diagnose again")
        pinned = await assess(target, options)
        render_diagnosis(pinned, console, fixes_for(pinned))

        _rule(console, "Step 4: the disallowed-list switch (rdptrust policy disallowed-autoupdate)")
        console.print(
            Text(
                "Windows 8 and later sync the disallowed list for trusted chains too, so"
                " neither Method 1 nor Method 2 removes that wait while Windows Update is"
                " unreachable: EnableDisallowedCertAutoUpdate=0 (or a RootDirUrl mirror) does."
            )
        )
        switched = replace(options, windows=replace(options.windows, disallowed_update=False))
        after = await assess(target, switched)
        render_diagnosis(after, console, fixes_for(after))
    return before, pinned, after


@click.command(
    epilog="""\b
Examples:
  rdptrust demo
  rdptrust demo --json > demo.json""",
)
@click.option(
    "--fetch-timeout",
    type=FiniteRange(min=0.2, max=15),
    default=2.0,
    show_default=True,
    help="Seconds rdptrust waits for each URL before counting Windows' full time-out.",
)
@click.option("--json", "as_json", is_flag=True, help="Print both diagnoses as one JSON object.")
def demo(fetch_timeout: float, as_json: bool) -> None:
    """See rdptrust find and fix the "Securing remote connection" stall on a built-in lab.

    Starts a local RDP host with a self-signed certificate and black-holed certificate
    trust lists, diagnoses it (about 45 s predicted wait on Windows 10), applies Method 1
    in a temporary store and diagnoses again (the disallowed-list sync stays), then models
    the disallowed-list switch too (no wait). Everything runs on 127.0.0.1 and is removed
    afterwards.
    """
    console = make_console(quiet=as_json)
    start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="rdptrust-demo-") as tmp:
        before, pinned, after = run(_demo(console, fetch_timeout, Path(tmp)))
    elapsed = time.monotonic() - start
    if as_json:
        document = demo_document(
            (before, fixes_for(before)),
            (pinned, fixes_for(pinned)),
            (after, fixes_for(after)),
            elapsed,
        )
        click.echo(dumps(document))
        return
    _rule(console, "What happened")
    console.print(
        Text(
            f"Before: a predicted wait of about {before.predicted_stall_s or 0:.0f} s on every"
            f" connection (verdict {before.verdict}). After pinning the host certificate"
            f" (Method 1): {pinned.predicted_stall_s or 0:.0f} s (verdict {pinned.verdict})."
            f" With the disallowed-list switch too: {after.predicted_stall_s or 0:.0f} s"
            f" (verdict {after.verdict}). Took {elapsed:.1f} s.",
            style="bold",
        )
    )
    console.print(
        Text(
            "Next: run 'rdptrust diagnose HOST' from a client's network against your own"
            " hosts; 'rdptrust lab --help' reproduces other cases (CA-issued certificates,"
            " black-holed CRL/OCSP, old hosts, hostile servers)."
        )
    )
