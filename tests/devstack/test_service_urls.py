"""``DATABASE_URL`` / ``REDIS_URL`` are built in one place (``nexa/service_urls.py``) in a form django-environ
and libpq read the same way: a Unix socket directory as ``?host=``, never as the URL's host or path.

Issue 9 §1: the subprocess URL of the test database was ``postgres://postgres@/<checkout>/.nexa/pg/test_nexa``,
which libpq and django-environ read as a database named after the path on the system's default socket."""

import os
import subprocess
import sys

import environ
import psycopg
import pytest
import redis
from django.db import connection
from django.db.utils import ConnectionHandler
from psycopg.conninfo import conninfo_to_dict

from nexa.service_urls import (
    postgres_params,
    postgres_url,
    postgres_url_with_database,
    redis_db,
    redis_url,
    redis_url_with_db,
)
from tests.fixtures import BASE_DIR, database_url

SOCKET_DIR = "/srv/a checkout/.nexa/pg"


def django_connect_params(url: str) -> dict:
    """What Django hands psycopg for ``DATABASE_URL=url``: django-environ's parse, then the real backend."""
    config = environ.Env.db_url_config(url)
    wrapper = ConnectionHandler({"default": config})["default"]  # Django fills in the defaults
    params = wrapper.get_connection_params()
    return {key: str(params[key]) for key in ("dbname", "host", "port", "user", "password") if params.get(key)}


def libpq_params(url: str) -> dict:
    return {key: str(value) for key, value in conninfo_to_dict(url).items() if value}


SETTINGS_CASES = [
    pytest.param(
        {"NAME": "test_nexa", "USER": "postgres", "PASSWORD": "", "HOST": SOCKET_DIR, "PORT": ""},
        {"dbname": "test_nexa", "host": SOCKET_DIR, "user": "postgres"},
        id="socket-dir-as-HOST",
    ),
    pytest.param(
        {
            "NAME": "test_nexa",
            "USER": "postgres",
            "PASSWORD": "",
            "HOST": "",
            "PORT": "",
            "OPTIONS": {"host": SOCKET_DIR, "port": 5433, "pool": {"max_size": 4}},
        },
        {"dbname": "test_nexa", "host": SOCKET_DIR, "port": "5433", "user": "postgres"},
        id="socket-dir-in-OPTIONS",
    ),
    pytest.param(
        {"NAME": "test_nexa", "USER": "nexa", "PASSWORD": "p@ss:w/rd", "HOST": "db.internal", "PORT": 6432},
        {"dbname": "test_nexa", "host": "db.internal", "port": "6432", "user": "nexa", "password": "p@ss:w/rd"},
        id="tcp-host",
    ),
    pytest.param(
        {"NAME": "test_nexa", "USER": "postgres", "PASSWORD": "", "HOST": "::1", "PORT": 5432},
        {"dbname": "test_nexa", "host": "::1", "port": "5432", "user": "postgres"},
        id="tcp-ipv6",
    ),
]


@pytest.mark.parametrize(("settings_dict", "expected"), SETTINGS_CASES)
def test_database_url_round_trips_through_django_environ_and_libpq(settings_dict, expected):
    url = database_url(settings_dict)
    assert django_connect_params(url) == expected
    assert libpq_params(url) == expected
    assert postgres_params(url) == expected
    # Rebuilding it from what Django made of it gives the same URL (the test database for subprocesses).
    assert database_url({**environ.Env.db_url_config(url)}) == url


def test_django_environs_own_socket_form_is_still_read():
    """``make services`` used to print ``postgres://postgres@/%2F…%2Fpg/nexa``; a DATABASE_URL kept from then
    still works with the launcher's libpq calls."""
    legacy = "postgres://postgres@/%2Fsrv%2Fa%20checkout%2F.nexa%2Fpg/nexa"
    expected = {"dbname": "nexa", "host": SOCKET_DIR, "user": "postgres"}
    assert django_connect_params(legacy) == expected
    assert postgres_params(legacy) == expected
    assert postgres_params(legacy, "postgres")["dbname"] == "postgres"
    assert postgres_url_with_database(legacy, "nexa_bench") == postgres_url(
        name="nexa_bench", host=SOCKET_DIR, user="postgres"
    )


def test_the_launchers_database_url_opens_the_same_database_in_libpq_and_django(django_db_setup):
    """The URL `make run` / `make test` export (and print in the banner) works pasted into psql/psycopg."""
    url = os.environ.get("DATABASE_URL")
    if not url:
        pytest.skip("run through `make test` (nexa.devstack sets DATABASE_URL)")
    wanted = environ.Env.db_url_config(url)["NAME"]
    with psycopg.connect(url, connect_timeout=10) as conn:  # libpq reads the URL itself
        assert conn.execute("SELECT current_database()").fetchone()[0] == wanted
    with psycopg.connect(**django_connect_params(url), connect_timeout=10) as conn:
        assert conn.execute("SELECT current_database()").fetchone()[0] == wanted


def test_test_database_url_opens_the_test_database_in_a_subprocess(test_database_url):
    """What live-server, Socket.IO, SSE and worker tests hand their subprocesses."""
    test_name = connection.settings_dict["NAME"]
    with psycopg.connect(test_database_url, connect_timeout=10) as conn:
        assert conn.execute("SELECT current_database()").fetchone()[0] == test_name
    script = (
        "import django; django.setup()\n"
        "from django.db import connection\n"
        "with connection.cursor() as cursor:\n"
        "    cursor.execute('SELECT current_database()')\n"
        "    print(cursor.fetchone()[0])\n"
    )
    env = {**os.environ, "DATABASE_URL": test_database_url, "DJANGO_SETTINGS_MODULE": "nexa.settings"}
    result = subprocess.run(
        [sys.executable, "-c", script], env=env, cwd=BASE_DIR, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().splitlines()[-1] == test_name


@pytest.mark.parametrize(
    ("url", "db"),
    [("redis://127.0.0.1:6390", 0), ("redis://127.0.0.1:6390/1", 1), ("redis://:pw@h:1/7?protocol=3", 7),
     ("redis://h:1?db=4", 4)],
)  # fmt: skip
def test_redis_db_reads_the_database_number_as_redis_py_does(url, db):
    assert redis_db(url) == db == redis.Redis.from_url(url).connection_pool.connection_kwargs.get("db", 0)


def test_redis_urls_built_by_the_launcher_are_what_redis_py_reads():
    url = redis_url_with_db(redis_url(port=6390, password="p@ss/w:rd"), 3)
    kwargs = redis.Redis.from_url(url).connection_pool.connection_kwargs
    assert (kwargs["host"], kwargs["port"], kwargs["db"], kwargs["password"]) == ("127.0.0.1", 6390, 3, "p@ss/w:rd")
    assert redis_url_with_db("redis://h:1/0?db=2&protocol=3", 5) == "redis://h:1/5?protocol=3"
