"""``rdptrust exporter``: a Prometheus exporter that probes RDP hosts on each scrape."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import click

from rdptrust.cli.common import SafeLogFormatter, run
from rdptrust.cli.exits import EXIT_OK
from rdptrust.cli.signals import stop_on_signals
from rdptrust.errors import UsageError
from rdptrust.monitor.config import ExporterConfig, default_config, load_config
from rdptrust.monitor.exporter import DEFAULT_PORT, Exporter, is_loopback, listen_address
from rdptrust.monitor.webconfig import WebConfig, load_web_config


@click.command(
    epilog=f"""\b
Endpoints:
  /probe?target=HOST:PORT[&module=NAME][&timeout=S]   probe now, answer its metrics
  /metrics                                           the exporter's own metrics

\b
Without --config there are two modules: 'default' (probe, 10 s) and 'diagnose'
(probe and time the URLs Windows fetches, 30 s). The README shows a configuration
file and a Prometheus scrape configuration with relabelling.

\b
Examples:
  rdptrust exporter
  rdptrust exporter --listen 127.0.0.1:{DEFAULT_PORT} --config /etc/rdptrust/exporter.yml
  rdptrust exporter --config exporter.yml --check-config
  rdptrust exporter --listen 0.0.0.0:{DEFAULT_PORT} --web.config.file web.yml

\b
Exit codes: 0 stopped by SIGINT or SIGTERM (or a valid config with --check-config),
64 bad arguments or configuration.""",
)
@click.option(
    "--listen",
    default=f"127.0.0.1:{DEFAULT_PORT}",
    show_default=True,
    metavar="HOST:PORT",
    help="Address to serve on; port 0 takes a free one. Anything but loopback lets "
    "others make this host probe any address they name.",
)
@click.option(
    "--config",
    "config_file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="YAML file with the modules (time-outs, trust sources, diagnosis).",
)
@click.option("--check-config", is_flag=True, help="Validate the configuration and exit.")
@click.option(
    "--max-connections",
    type=click.IntRange(min=1, max=65536),
    default=256,
    show_default=True,
    help="Open HTTP connections served at once; more are closed at once.",
)
@click.option(
    "--web.config.file",
    "web_config_file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="exporter-toolkit web configuration (web.yml): tls_server_config for HTTPS, "
    "basic_auth_users with bcrypt hashes.",
)
def exporter(
    listen: str,
    config_file: Path | None,
    check_config: bool,
    max_connections: int,
    web_config_file: Path | None,
) -> None:
    """Serve Prometheus metrics about RDP hosts, probing each one when it is scraped.

    The blackbox_exporter pattern: Prometheus scrapes /probe?target=HOST:PORT, the
    exporter probes that host during the scrape and answers its certificate, protocol,
    trust and timing metrics (see the README for the list).
    """
    try:
        host, port = listen_address(listen)
    except UsageError as exc:
        raise click.BadParameter(str(exc), param_hint="--listen") from None
    config = load_config(config_file) if config_file is not None else default_config()
    web = load_web_config(web_config_file) if web_config_file is not None else WebConfig()
    if web.tls is not None:
        web.tls.context()  # a TLS file that cannot be used is a usage error now
    if check_config:
        names = ", ".join(sorted(config.modules))
        click.echo(f"rdptrust exporter: configuration valid; modules: {names}")
        click.get_current_context().exit(EXIT_OK)
    if not is_loopback(host) and not web.users:
        click.echo(
            f"rdptrust exporter: warning: listening on {host}, not loopback: anyone who can "
            "reach it can make this host probe any address",
            err=True,
        )
    handler = logging.StreamHandler()
    handler.setFormatter(SafeLogFormatter("rdptrust exporter: %(message)s"))
    logging.basicConfig(level=logging.WARNING, handlers=[handler])
    run(_serve(config, host, port, max_connections, web))
    click.get_current_context().exit(EXIT_OK)


async def _serve(
    config: ExporterConfig, host: str, port: int, max_connections: int, web: WebConfig
) -> None:
    stop = asyncio.Event()
    with stop_on_signals(stop):
        server = Exporter(config, host=host, port=port, max_connections=max_connections, web=web)
        await server.start()
        click.echo(
            f"rdptrust exporter: listening on {server.url} "
            f"(modules: {', '.join(sorted(config.modules))})",
            err=True,
        )
        await server.serve_forever(stop)
