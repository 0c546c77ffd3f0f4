"""A real WordPress site on loopback for the REST portal's tests, installed once per run.

Debian's ``wordpress`` package (``apt-get install wordpress php-cli php-mysql``) keeps the
code in /usr/share/wordpress. A site here is a directory of links to that code plus its
own ``wp-config.php`` (a fresh MariaDB database, application passwords allowed on http,
no cron, no outside HTTP), a ``wp-content`` with the ``syncd-b2b.php`` mu-plugin, and
``php -S 127.0.0.1:PORT`` serving it. ``shared_site`` starts one per test session; it is
stopped and its database dropped when the session ends.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
import sqlalchemy as sa
import yaml

from tests.conftest import MARIADB_ADMIN_URL, unavailable

WORDPRESS = Path("/usr/share/wordpress")
HERE = Path(__file__).parent
EXAMPLE = HERE.parent.parent / "examples" / "portal-wordpress.yaml"
ADMIN = "syncd-admin"
START_TIMEOUT_S = 20.0

WP_CONFIG = """<?php
define( 'DB_NAME', '{database}' );
define( 'DB_USER', '{db_user}' );
define( 'DB_PASSWORD', '{db_password}' );
define( 'DB_HOST', '{db_host}' );
define( 'DB_CHARSET', 'utf8mb4' );
define( 'DB_COLLATE', '' );
{salts}
$table_prefix = 'wp_';
define( 'WP_HOME', '{url}' );
define( 'WP_SITEURL', '{url}' );
define( 'WP_CONTENT_DIR', '{content}' );
define( 'WP_ENVIRONMENT_TYPE', 'local' );
define( 'DISABLE_WP_CRON', true );
define( 'WP_HTTP_BLOCK_EXTERNAL', true );
define( 'AUTOMATIC_UPDATER_DISABLED', true );
define( 'WP_DEBUG', false );
require_once ABSPATH . 'wp-settings.php';
"""
SALTS = ("AUTH", "SECURE_AUTH", "LOGGED_IN", "NONCE")


@dataclass
class Site:
    """A running WordPress: where it is, its administrator's application password."""

    url: str
    app_password: str
    database: str
    directory: Path
    process: subprocess.Popen[bytes]

    def section(self) -> dict[str, Any]:
        """``examples/portal-wordpress.yaml``'s portal section, pointed at this site."""
        values: dict[str, Any] = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))["portal"]
        values.pop("password_file", None)
        values.update(url=f"{self.url}/wp-json/wp/v2", username=ADMIN, password=self.app_password)
        return values

    def logs_in(self, login: str, password: str) -> bool:
        """Whether WordPress's own login form (``wp-login.php``) lets ``login`` in."""
        response = requests.post(
            f"{self.url}/wp-login.php",
            data={"log": login, "pwd": password, "wp-submit": "Log In"},
            allow_redirects=False,
            timeout=30,
        )
        return any(c.name.startswith("wordpress_logged_in_") for c in response.cookies)

    def login_page(self, login: str, password: str) -> str:
        """The text of the login page after a refused login (what the user reads)."""
        data = {"log": login, "pwd": password, "wp-submit": "Log In"}
        return requests.post(f"{self.url}/wp-login.php", data=data, timeout=30).text

    def empty(self) -> None:
        """Remove every user but the administrator, as on a new site."""
        url = sa.make_url(MARIADB_ADMIN_URL).set(database=self.database)
        engine = sa.create_engine(url)
        try:
            with engine.begin() as conn:
                conn.exec_driver_sql("DELETE FROM wp_usermeta WHERE user_id <> 1")
                conn.exec_driver_sql("DELETE FROM wp_users WHERE ID <> 1")
        finally:
            engine.dispose()

    def stop(self) -> None:
        """Stop php, drop the database, remove the site's directory."""
        _end(self.process)
        _drop(self.database)
        shutil.rmtree(self.directory, ignore_errors=True)


_SITE: dict[str, Site] = {}


def shared_site(request: pytest.FixtureRequest) -> Site:
    """The session's WordPress site, installed on first use and stopped at the end of the
    run; a missing php, WordPress or MariaDB skips (fails under SYNCD_REQUIRE_DB=1)."""
    if "site" not in _SITE:
        _SITE["site"] = start()
        request.config.add_cleanup(_stop_shared)
    return _SITE["site"]


def _stop_shared() -> None:
    site = _SITE.pop("site", None)
    if site is not None:
        site.stop()


def start() -> Site:
    """Install a site in a fresh database and serve it with ``php -S``."""
    php = shutil.which("php")
    if php is None or not (WORDPRESS / "wp-settings.php").exists():
        missing = "php" if php is None else str(WORDPRESS)
        unavailable("WordPress (apt-get install wordpress php-cli php-mysql)", LookupError(missing))
        raise AssertionError("unreachable")
    database = f"syncd_wp_{uuid.uuid4().hex[:12]}"
    try:
        _create(database)
    except sa.exc.SQLAlchemyError as error:
        unavailable("MariaDB on 127.0.0.1:3306", error)
    directory = Path(tempfile.mkdtemp(prefix="syncd-wp-"))
    try:
        return _serve(php, database, directory)
    except BaseException:
        _drop(database)
        shutil.rmtree(directory, ignore_errors=True)
        raise


def _serve(php: str, database: str, directory: Path) -> Site:
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    site_dir = _lay_out(directory, database, url)
    admin_password = secrets.token_urlsafe(16)
    installed = subprocess.run(  # noqa: S603 - php from PATH, our own script, fixed argv
        [php, str(HERE / "install.php"), str(site_dir), admin_password],
        capture_output=True,
        check=False,
        timeout=120,
    )
    if installed.returncode != 0:
        said = (installed.stdout + installed.stderr)[-2000:].decode(errors="replace")
        message = f"the WordPress install failed: {said}"
        raise RuntimeError(message)
    app_password = json.loads(installed.stdout.decode().strip().splitlines()[-1])["app_password"]
    env = {**os.environ, "SYNCD_WP_SITE": str(site_dir), "PHP_CLI_SERVER_WORKERS": "4"}
    command = [php, "-d", f"auto_prepend_file={HERE / 'prepend.php'}", "-S", f"127.0.0.1:{port}"]
    log = (directory / "php.log").open("wb")
    process = subprocess.Popen(  # noqa: S603 - php from PATH, fixed argv
        [*command, "-t", str(site_dir)],
        cwd=site_dir,
        env=env,
        stdout=log,
        stderr=log,
        start_new_session=True,  # its own process group: php's workers stop with it
    )
    log.close()
    site = Site(url, app_password, database, directory, process)
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        try:
            requests.get(f"{url}/wp-json/", timeout=5)
            return site
        except requests.ConnectionError:
            time.sleep(0.1)
    _end(process)
    message = f"php -S did not answer on {url} within {START_TIMEOUT_S:g} s"
    raise RuntimeError(message)


def _end(process: subprocess.Popen[bytes]) -> None:
    """Stop ``php -S`` and its workers (its process group, which it leads)."""
    for sig, wait in ((signal.SIGTERM, 10), (signal.SIGKILL, 10)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            break
        try:
            process.wait(timeout=wait)
            break
        except subprocess.TimeoutExpired:
            continue


def _lay_out(directory: Path, database: str, url: str) -> Path:
    """The site's directory: links to WordPress's files, its own config and wp-content."""
    site_dir, content = directory / "site", directory / "wp-content"
    site_dir.mkdir()
    for entry in WORDPRESS.iterdir():
        if entry.name not in {"wp-config.php", "wp-content"}:
            (site_dir / entry.name).symlink_to(entry)
    for name in ("plugins", "themes", "uploads", "mu-plugins"):
        (content / name).mkdir(parents=True)
    (content / "mu-plugins" / "syncd-b2b.php").symlink_to(HERE / "syncd-b2b.php")
    admin = sa.make_url(MARIADB_ADMIN_URL)
    salts = "\n".join(
        f"define( '{name}_{kind}', '{secrets.token_hex(32)}' );"
        for name in SALTS
        for kind in ("KEY", "SALT")
    )
    config = WP_CONFIG.format(
        database=database,
        db_user=admin.username or "root",
        db_password=admin.password or "",
        db_host=f"{admin.host or '127.0.0.1'}:{admin.port or 3306}",
        salts=salts,
        url=url,
        content=content,
    )
    (site_dir / "wp-config.php").write_text(config, encoding="utf-8")
    return site_dir


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _create(database: str) -> None:
    engine = sa.create_engine(MARIADB_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql(
                f"CREATE DATABASE {database} CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"
            )
    finally:
        engine.dispose()


def _drop(database: str) -> None:
    engine = sa.create_engine(MARIADB_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {database}")
    finally:
        engine.dispose()
