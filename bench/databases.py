"""Throwaway benchmark databases: ``<name><suffix>`` next to the configured one, dropped and recreated
per run. Only databases ending in the bench suffix are ever dropped."""

from nexa.service_urls import postgres_params, postgres_url_with_database


def bench_database_url(base_url: str, suffix: str) -> str:
    """``base_url``'s server and credentials, database ``<its name><suffix>`` (TCP or socket URL alike)."""
    name = postgres_params(base_url)["dbname"]
    if not name.endswith(suffix):
        name += suffix
    return postgres_url_with_database(base_url, name)


def recreate_database(url: str, suffix: str) -> None:
    import psycopg
    from psycopg import sql

    name = postgres_params(url)["dbname"]
    if not name.endswith(suffix):  # never drop anything but a bench database
        raise SystemExit(f"refusing to drop {name!r}")
    with psycopg.connect(**postgres_params(url, "postgres"), autocommit=True, connect_timeout=10) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
