"""The one place that builds and reads ``DATABASE_URL`` / ``REDIS_URL`` values (standard library only).

A PostgreSQL URL must mean the same thing to django-environ (``nexa/settings.py``) and to libpq
(psycopg, ``psql``). For a TCP server that is the usual ``postgres://user:password@host:port/name``.
A Unix socket directory cannot be the host part as it is (``postgres://postgres@/run/pg/nexa`` is the
database ``run/pg/nexa`` on libpq's default socket), and django-environ's own socket form
(``postgres://postgres@/%2Frun%2Fpg/nexa``) means database ``/run/pg/nexa`` to libpq. The form both
read the same way is the libpq query parameter::

    postgres://postgres@/nexa?host=%2Frun%2Fpg&port=5433

django-environ passes ``host``/``port`` through ``OPTIONS`` to psycopg, libpq reads them natively, and
``psql`` accepts the URL as it is. :func:`postgres_url` builds it, :func:`postgres_url_from_settings`
rebuilds it from a Django ``DATABASES`` entry (the test database for subprocesses), and
:func:`postgres_params` reads any of the three forms into libpq keywords.
"""

from __future__ import annotations

import urllib.parse

from psycopg.conninfo import conninfo_to_dict

# Django OPTIONS that are not libpq connection parameters.
_DJANGO_ONLY_OPTIONS = frozenset({"pool", "isolation_level", "server_side_binding", "assume_role", "client_encoding"})


def _is_socket_dir(host: str) -> bool:
    return host.startswith("/") or host.startswith("@")  # a directory, or a Linux abstract namespace


def postgres_url(
    *,
    name: str,
    host: str | None = None,
    port: int | str | None = None,
    user: str | None = None,
    password: str | None = None,
    options: dict[str, str | int] | None = None,
) -> str:
    """``postgres://`` URL for a TCP host or a Unix socket directory (carried as ``?host=``)."""
    credentials = urllib.parse.quote(user or "", safe="")
    if password:
        credentials += ":" + urllib.parse.quote(password, safe="")
    if credentials:
        credentials += "@"
    query: dict[str, str] = {}
    authority = ""
    host = host or ""
    if host and _is_socket_dir(host):
        query["host"] = host
        if port:
            query["port"] = str(port)
    else:
        if host:
            authority = f"[{host}]" if ":" in host else host
        if port:
            authority += f":{port}"
    for key, value in (options or {}).items():
        if key not in _DJANGO_ONLY_OPTIONS and key not in ("host", "port") and isinstance(value, str | int):
            query[key] = str(value)
    url = f"postgres://{credentials}{authority}/{urllib.parse.quote(name, safe='')}"
    if query:
        url += "?" + urllib.parse.urlencode(query, quote_via=urllib.parse.quote, safe="")
    return url


def postgres_url_from_settings(settings_dict: dict) -> str:
    """The URL of a Django ``DATABASES`` entry (``HOST``/``PORT``, or ``OPTIONS`` host/port as
    django-environ sets them from ``?host=``), so a subprocess opens exactly that database."""
    options = dict(settings_dict.get("OPTIONS") or {})
    return postgres_url(
        name=settings_dict["NAME"],
        host=settings_dict.get("HOST") or options.get("host") or None,
        port=settings_dict.get("PORT") or options.get("port") or None,
        user=settings_dict.get("USER") or None,
        password=settings_dict.get("PASSWORD") or None,
        options=options,
    )


def _normalise(url: str) -> str:
    """django-environ's socket form (``postgres://u@/%2Fsocket%2Fdir/name``) → the ``?host=`` form."""
    parts = urllib.parse.urlsplit(url)
    path = urllib.parse.unquote(parts.path)
    if parts.hostname is None and path.startswith("//"):
        host, name = path[1:].rsplit("/", 1)
        query = urllib.parse.parse_qs(parts.query)
        return postgres_url(
            name=name,
            host=host,
            port=parts.port or (query.pop("port", [None])[0]),
            user=urllib.parse.unquote(parts.username) if parts.username else None,
            password=urllib.parse.unquote(parts.password) if parts.password else None,
            options={key: values[-1] for key, values in query.items() if key != "host"},
        )
    return url


def postgres_params(url: str, dbname: str | None = None) -> dict[str, str]:
    """libpq keyword parameters (for ``psycopg.connect(**…)``) from a ``postgres://`` URL in any of the
    forms above, read by libpq's own parser; ``dbname`` replaces the URL's database."""

    params = {key: str(value) for key, value in conninfo_to_dict(_normalise(url)).items() if value not in (None, "")}
    if dbname:
        params["dbname"] = dbname
    params.setdefault("dbname", "postgres")
    return params


def postgres_url_with_database(url: str, name: str) -> str:
    """The same server and credentials, another database."""
    params = postgres_params(url)
    host, port = params.pop("host", None), params.pop("port", None)
    user, password = params.pop("user", None), params.pop("password", None)
    params.pop("dbname", None)
    return postgres_url(name=name, host=host, port=port, user=user, password=password, options=params)


def redis_url(*, port: int, host: str = "127.0.0.1", db: int | None = None, password: str | None = None) -> str:
    """``redis://`` URL for a TCP Redis (``db`` appended when given)."""
    credentials = f":{urllib.parse.quote(password, safe='')}@" if password else ""
    authority = f"[{host}]" if ":" in host else host
    return f"redis://{credentials}{authority}:{port}" + (f"/{db}" if db is not None else "")


def redis_db(url: str) -> int:
    """The database number a ``redis://`` URL selects (``/n`` path or ``?db=n``; 0 when it names none)."""
    parts = urllib.parse.urlsplit(url)
    number = parts.path.strip("/") or urllib.parse.parse_qs(parts.query).get("db", ["0"])[-1]
    return int(number or 0)


def redis_url_with_db(url: str, db: int) -> str:
    """The same Redis server and credentials, database ``db``."""
    parts = urllib.parse.urlsplit(url)
    query = urllib.parse.urlencode([(k, v) for k, v in urllib.parse.parse_qsl(parts.query) if k != "db"])
    return urllib.parse.urlunsplit(parts._replace(path=f"/{db}", query=query))
