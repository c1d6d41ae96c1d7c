"""The inventory's SQLite schema, as an ordered list of migrations.

``schema_migrations`` records each applied version. Opening a database applies the
missing migrations in order, each in its own transaction; a database from a newer
rdptrust (a version this one does not know) is refused rather than guessed at.

Tables:

- ``scans``: one row per ``rdptrust scan`` run: ``status`` running / interrupted / done,
  the argument list (JSON) and options (JSON) it was started with, the process id.
- ``scan_targets``: the scan's target list in order (``seq``), each pending or done;
  ``--resume`` probes the pending ones.
- ``hosts``: every (host, port) ever scanned.
- ``certificates``: each leaf certificate once, by SHA-256, with its DER and facts.
- ``observations``: one per host per scan: outcome, certificate, TLS, protocols,
  timings, and the diagnosis when there was one.
- ``problems``: the diagnosis' problems and the probe's security findings.
- ``observations.ntlm`` (migration 2): NetBIOS/DNS names, OS version and host time from
  the anonymous NTLM CHALLENGE, as JSON, when the scan enumerated.
- ``events``: first-seen, certificate-changed (with its class), became-unreachable,
  became-reachable; indexed by host, by scan and (migration 3) by observation.
- ``scans.site``, ``scans.machine``, ``observations.site``, ``events.site`` (migration
  4): the site a scan ran from (``scan --site``) and the machine it ran on; a host's
  events compare each observation with the previous one from the same site.
- ``scans.queued``, ``scan_targets.worker``, ``scan_targets.lease_until`` (migration 4):
  a scan queued with ``scan --queue`` is worked by ``rdptrust worker`` processes, which
  claim batches of its pending targets until a lease time; a claim whose lease passed
  (a worker killed) is claimed again. ``worker`` stays set on the targets it recorded.
- migration 5 (SQLite only) rebuilds ``certificates`` with a rowid, which packs its
  kilobyte rows into pages instead of an overflow page each.
"""

from __future__ import annotations

MIGRATIONS: tuple[str, ...] = (
    # 1: the first schema.
    """
    CREATE TABLE scans (
        id INTEGER PRIMARY KEY,
        started_at TEXT NOT NULL,
        finished_at TEXT,
        status TEXT NOT NULL CHECK (status IN ('running', 'interrupted', 'done')),
        arguments TEXT NOT NULL,
        options TEXT NOT NULL,
        pid INTEGER,
        target_count INTEGER NOT NULL DEFAULT 0
    );
    CREATE TABLE scan_targets (
        scan_id INTEGER NOT NULL REFERENCES scans(id) ON DELETE CASCADE,
        seq INTEGER NOT NULL,
        host TEXT NOT NULL,
        port INTEGER NOT NULL,
        state TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'done')),
        PRIMARY KEY (scan_id, seq),
        UNIQUE (scan_id, host, port)
    ) WITHOUT ROWID;
    CREATE INDEX scan_targets_state ON scan_targets (scan_id, state, seq);
    CREATE TABLE hosts (
        id INTEGER PRIMARY KEY,
        host TEXT NOT NULL,
        port INTEGER NOT NULL,
        first_seen TEXT NOT NULL,
        UNIQUE (host, port)
    );
    CREATE TABLE certificates (
        sha256 TEXT PRIMARY KEY,
        der BLOB NOT NULL,
        subject TEXT NOT NULL,
        issuer TEXT NOT NULL,
        common_name TEXT,
        self_signed INTEGER NOT NULL,
        not_before TEXT,
        not_after TEXT,
        public_key_sha256 TEXT,
        key_type TEXT,
        key_bits INTEGER,
        signature_hash TEXT,
        first_seen TEXT NOT NULL
    ) WITHOUT ROWID;
    CREATE TABLE observations (
        id INTEGER PRIMARY KEY,
        scan_id INTEGER NOT NULL REFERENCES scans(id) ON DELETE CASCADE,
        host_id INTEGER NOT NULL REFERENCES hosts(id),
        observed_at TEXT NOT NULL,
        address TEXT,
        ok INTEGER NOT NULL,
        error_kind TEXT,
        error_message TEXT,
        selected_protocol TEXT,
        negotiation_failure TEXT,
        sha256 TEXT REFERENCES certificates(sha256),
        chain TEXT NOT NULL DEFAULT '[]',
        tls_version TEXT,
        tls_cipher TEXT,
        protocols TEXT NOT NULL DEFAULT '{}',
        tls_versions TEXT NOT NULL DEFAULT '{}',
        connect_ms REAL,
        x224_ms REAL,
        tls_ms REAL,
        total_ms REAL,
        verdict TEXT,
        predicted_stall_s REAL,
        retrievals TEXT,
        UNIQUE (scan_id, host_id)
    );
    CREATE INDEX observations_host ON observations (host_id, id);
    CREATE TABLE problems (
        observation_id INTEGER NOT NULL REFERENCES observations(id) ON DELETE CASCADE,
        code TEXT NOT NULL,
        severity TEXT NOT NULL,
        message TEXT NOT NULL
    );
    CREATE INDEX problems_observation ON problems (observation_id);
    CREATE TABLE events (
        id INTEGER PRIMARY KEY,
        host_id INTEGER NOT NULL REFERENCES hosts(id),
        scan_id INTEGER NOT NULL REFERENCES scans(id) ON DELETE CASCADE,
        observation_id INTEGER REFERENCES observations(id) ON DELETE CASCADE,
        at TEXT NOT NULL,
        kind TEXT NOT NULL CHECK (kind IN
            ('first-seen', 'certificate-changed', 'became-unreachable', 'became-reachable')),
        change TEXT CHECK (change IN ('recreation', 'ca-issued', 'unexpected')),
        old_sha256 TEXT,
        new_sha256 TEXT,
        detail TEXT NOT NULL
    );
    CREATE INDEX events_host ON events (host_id, id);
    CREATE INDEX events_scan ON events (scan_id, id);
    """,
    # 2: which machine answered: NTLM host information (JSON) when the scan asked for it.
    """
    ALTER TABLE observations ADD COLUMN ntlm TEXT;
    """,
    # 3: an observation's events by index (recording a host reads its events back; without
    # it each record scanned every event, quadratic in the fleet size).
    """
    CREATE INDEX events_observation ON events (observation_id);
    """,
    # 4: sites and the shared queue. Where each scan ran (the network its clients sit
    # on) and on which machine; each observation and event keeps its scan's site, so one
    # host seen from two sites keeps both views (NULL: recorded before sites existed). A
    # queued scan's targets are claimed by workers: who holds each and until when.
    """
    ALTER TABLE scans ADD COLUMN site TEXT;
    ALTER TABLE scans ADD COLUMN machine TEXT;
    ALTER TABLE scans ADD COLUMN queued INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE observations ADD COLUMN site TEXT;
    ALTER TABLE events ADD COLUMN site TEXT;
    ALTER TABLE scan_targets ADD COLUMN worker TEXT;
    ALTER TABLE scan_targets ADD COLUMN lease_until TEXT;
    CREATE INDEX observations_host_site ON observations (host_id, site, id);
    CREATE INDEX scans_queue ON scans (queued, status, site);
    """,
    # 5 (SQLite only): certificates in a table with a rowid. Its rows hold a DER of about
    # a kilobyte; in a WITHOUT ROWID table each such row overflowed into pages of its
    # own, most of them empty (71 of 89 MB at 20,000 hosts). Rebuilt as SQLite's
    # documented table change does it (foreign keys off, checked before commit).
    """
    CREATE TABLE certificates_new (
        sha256 TEXT PRIMARY KEY,
        der BLOB NOT NULL,
        subject TEXT NOT NULL,
        issuer TEXT NOT NULL,
        common_name TEXT,
        self_signed INTEGER NOT NULL,
        not_before TEXT,
        not_after TEXT,
        public_key_sha256 TEXT,
        key_type TEXT,
        key_bits INTEGER,
        signature_hash TEXT,
        first_seen TEXT NOT NULL
    );
    INSERT INTO certificates_new SELECT sha256, der, subject, issuer, common_name,
        self_signed, not_before, not_after, public_key_sha256, key_type, key_bits,
        signature_hash, first_seen FROM certificates;
    DROP TABLE certificates;
    ALTER TABLE certificates_new RENAME TO certificates
    """,
)

#: Migrations that only SQLite runs (PostgreSQL's tables never had the form they change);
#: on PostgreSQL they are recorded as applied and nothing else.
SQLITE_ONLY: frozenset[int] = frozenset({5})
#: Migrations SQLite runs with foreign keys off (a table rebuilt under its references).
SQLITE_REBUILDS: frozenset[int] = frozenset({5})

#: The schema version this rdptrust writes.
SCHEMA_VERSION = len(MIGRATIONS)
