"""Before a sweep starts: a tracking store that cannot record stops it with one line.

A database URI (`postgresql://...`) whose database does not answer, or an MLflow server that answers but whose own
store fails (its database down), would lose every record of the sweep. A server that does not answer at all is
different: trials train anyway and queue their metrics for when it is back (`tracking.py`), as the plan says.
Passwords come from the environment (PGPASSWORD, MLFLOW_TRACKING_PASSWORD), and are never shown.
"""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlparse

from nerftune.errors import InputError

DATABASE_SCHEMES = ("postgresql", "mysql", "mssql")
TIMEOUT_S = 10  # a healthy store answers a one-experiment search in well under a second


def check_tracking_store(uri: str, source: str | Path, field: str) -> None:
    """Raise `InputError` if the store at `uri` is reachable and cannot record, or is a database that is down."""
    scheme = urlparse(uri).scheme.split("+")[0]
    if scheme in DATABASE_SCHEMES:
        _check_database(uri, source, field)
    elif scheme in ("http", "https"):
        _check_server(uri, source, field)


def shown(uri: str) -> str:
    """The URI with any password in it hidden."""
    return re.sub(r"://([^:/@]+):[^@/]*@", r"://\1:***@", uri)


def _check_database(uri: str, source: str | Path, field: str) -> None:
    import sqlalchemy

    options = {"connect_timeout": TIMEOUT_S} if uri.startswith("postgresql") else {}
    try:
        with sqlalchemy.create_engine(uri, connect_args=options).connect():
            return
    except Exception as error:  # the driver's own errors: refused, unknown host, password, no such database
        reason = str(error).strip().splitlines()[0][:200]
    raise InputError(
        source,
        field,
        f"the database at {shown(uri)} does not answer ({reason})",
        "start it, or fix the URI; its password comes from PGPASSWORD, never from the URI or the spec",
    )


def _check_server(uri: str, source: str | Path, field: str) -> None:
    request = f"{uri.rstrip('/')}/api/2.0/mlflow/experiments/search?max_results=1"
    try:
        urllib.request.urlopen(request, timeout=TIMEOUT_S)
    except urllib.error.HTTPError as error:
        if error.code < 500:
            return  # authentication and the like: MLflow's client says it on the first call
        try:
            reason = json.loads(error.read()).get("message", "")[:200]
        except (ValueError, AttributeError):
            reason = ""
        raise InputError(
            source,
            field,
            f"the MLflow server at {shown(uri)} answers, but its store fails (HTTP {error.code}: {reason})",
            "start its database (mlflow server's --backend-store-uri), or use another tracking URI",
        ) from None
    except (OSError, ValueError):
        if not _healthy(uri):
            return  # not answering at all: trials train anyway and queue their metrics
        raise InputError(  # up, but its store hangs: MLflow retries a database that is down
            source,
            field,
            f"the MLflow server at {shown(uri)} is up, but its store does not answer in {TIMEOUT_S} s",
            "start its database (mlflow server's --backend-store-uri), or use another tracking URI",
        ) from None


def _healthy(uri: str) -> bool:
    try:
        return urllib.request.urlopen(f"{uri.rstrip('/')}/health", timeout=TIMEOUT_S).status == 200
    except (OSError, ValueError):
        return False
