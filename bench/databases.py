"""Throwaway benchmark databases: ``<name><suffix>`` next to the configured one, dropped and recreated
per run. Only databases ending in the bench suffix are ever dropped."""

import urllib.parse

from nexa import devstack


def bench_database_url(base_url: str, suffix: str) -> str:
    parts = urllib.parse.urlsplit(base_url)
    name = parts.path.lstrip("/") or "nexa"
    if not name.endswith(suffix):
        name += suffix
    return urllib.parse.urlunsplit(parts._replace(path="/" + name))


def recreate_database(url: str, suffix: str) -> None:
    import psycopg
    from psycopg import sql

    name = devstack.postgres_params(url)["dbname"]
    if not name.endswith(suffix):  # never drop anything but a bench database
        raise SystemExit(f"refusing to drop {name!r}")
    with psycopg.connect(**devstack.postgres_params(url, "postgres"), autocommit=True, connect_timeout=10) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
