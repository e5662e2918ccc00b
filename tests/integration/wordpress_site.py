"""A real WordPress for tests: Debian's `wordpress` package served by `php -S` on loopback,
with a fresh MariaDB database per run (dropped afterwards).

Debian's /usr/share/wordpress/wp-config.php reads /etc/wordpress/config-<name>.php, where
<name> is the WORDPRESS_CONFIG server variable (else the request's host): each site writes
its own file there, with a name of its own, and removes it at the end. Posts are made
through WordPress's own PHP API (`wp_insert_post` and friends) by `php` scripts that load
wp-load.php, as a plugin or WP-CLI would.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

WORDPRESS = Path("/usr/share/wordpress")
CONFIGS = Path("/etc/wordpress")
MARIADB = {"host": "127.0.0.1", "port": 3306, "user": "root"}


def missing() -> str | None:
    """Why a WordPress cannot be run here, or None when it can."""
    if not (WORDPRESS / "wp-load.php").is_file():
        return f"WordPress is not installed ({WORDPRESS}: apt-get install wordpress)"
    if shutil.which("php") is None:
        return "php is not installed (apt-get install php-cli php-mysql)"
    if shutil.which("mysql") is None:
        return "the mysql client is not installed (apt-get install mariadb-client)"
    if not os.access(CONFIGS, os.W_OK):
        return f"{CONFIGS} is not writable: a test site cannot be configured"
    probe = _mysql("SELECT 1", check=False)
    if probe.returncode != 0:
        return f"MariaDB does not answer at 127.0.0.1:3306 as root: {probe.stderr.strip()}"
    return None


def _mysql(sql: str, *, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["mysql", "-h", MARIADB["host"], "-P", str(MARIADB["port"]), "-u", MARIADB["user"]],
        input=sql,
        capture_output=True,
        text=True,
        timeout=60,
        check=check,
    )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


_ROUTER = """<?php
// php -S router: every request runs WordPress's front controller (feeds are /?feed=...)
$_SERVER['WORDPRESS_CONFIG'] = getenv('WORDPRESS_CONFIG');
chdir('/usr/share/wordpress');
require '/usr/share/wordpress/index.php';
"""

_BOOT = """<?php
$_SERVER['WORDPRESS_CONFIG'] = getenv('WORDPRESS_CONFIG');
$_SERVER['HTTP_HOST'] = getenv('WP_TEST_HOST');
$_SERVER['REQUEST_URI'] = '/';
if (getenv('WP_TEST_INSTALLING')) {
    define('WP_INSTALLING', true);
}
require '/usr/share/wordpress/wp-load.php';
"""


@dataclass
class WordPress:
    """One running site: its base URL and a way to run PHP with WordPress loaded."""

    url: str
    name: str
    workdir: Path

    def php(self, code: str, *, installing: bool = False) -> Any:
        """Run `code` (PHP statements) with WordPress loaded; what it echoes, read as JSON."""
        script = self.workdir / f"run-{secrets.token_hex(4)}.php"
        script.write_text(f"<?php\nrequire {json.dumps(str(self.workdir / 'boot.php'))};\n{code}\n")
        env = {
            **os.environ,
            "WORDPRESS_CONFIG": self.name,
            "WP_TEST_HOST": self.url.removeprefix("http://"),
        }
        if installing:
            env["WP_TEST_INSTALLING"] = "1"
        done = subprocess.run(
            ["php", str(script)],
            capture_output=True,
            text=True,
            timeout=120,
            env=env,
            cwd=WORDPRESS,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"php failed ({done.returncode}): {done.stdout}{done.stderr}")
        out = done.stdout.strip()
        return json.loads(out) if out else None


@contextmanager
def wordpress_site(
    workdir: Path, *, timezone: str = "Europe/Berlin", mu_plugins: dict[str, str] | None = None
) -> Iterator[WordPress]:
    """A freshly installed WordPress on a free loopback port, with `mu_plugins` (file name:
    PHP source) loaded on every request; everything goes afterwards."""
    name = f"newsbot-test-{secrets.token_hex(6)}"
    database = name.replace("-", "_")
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    config = CONFIGS / f"config-{name}.php"
    keys = "\n".join(
        f"define('{key}', '{secrets.token_hex(16)}');"
        for key in (
            "AUTH_KEY",
            "SECURE_AUTH_KEY",
            "LOGGED_IN_KEY",
            "NONCE_KEY",
            "AUTH_SALT",
            "SECURE_AUTH_SALT",
            "LOGGED_IN_SALT",
            "NONCE_SALT",
        )
    )
    config.write_text(
        f"""<?php
define('DB_NAME', '{database}');
define('DB_USER', 'root');
define('DB_PASSWORD', '');
define('DB_HOST', '127.0.0.1:3306');
define('WP_HOME', '{url}');
define('WP_SITEURL', '{url}');
define('WP_CONTENT_DIR', '/usr/share/wordpress/wp-content');
define('WPMU_PLUGIN_DIR', '{workdir / "mu-plugins"}');
define('DISABLE_WP_CRON', true);
define('WP_HTTP_BLOCK_EXTERNAL', true);
define('AUTOMATIC_UPDATER_DISABLED', true);
{keys}
"""
    )
    (workdir / "mu-plugins").mkdir()
    for file_name, source in (mu_plugins or {}).items():
        (workdir / "mu-plugins" / file_name).write_text(source)
    _mysql(f"CREATE DATABASE `{database}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
    (workdir / "router.php").write_text(_ROUTER)
    (workdir / "boot.php").write_text(_BOOT)
    server: subprocess.Popen[bytes] | None = None
    try:
        site = WordPress(url, name, workdir)
        site.php(
            """
require_once ABSPATH . 'wp-admin/includes/upgrade.php';
wp_install('The Daily Meridian', 'editor', 'editor@meridian.example', true, '',
    'not-a-secret-password');
update_option('permalink_structure', '');
echo json_encode(true);
""",
            installing=True,
        )
        site.php(f"update_option('timezone_string', {json.dumps(timezone)}); echo 1;")
        server = subprocess.Popen(  # noqa: S603 - our own fixed command line
            ["php", "-S", f"127.0.0.1:{port}", "-t", str(WORDPRESS), str(workdir / "router.php")],
            env={**os.environ, "WORDPRESS_CONFIG": name},
            cwd=WORDPRESS,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 20
        while True:
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", port)) == 0:
                    break
            if time.monotonic() > deadline or server.poll() is not None:
                raise RuntimeError("php -S did not start")
            time.sleep(0.05)
        yield site
    finally:
        if server is not None:
            server.terminate()
            with suppress(subprocess.TimeoutExpired):
                server.wait(timeout=10)
            if server.poll() is None:
                server.kill()
        config.unlink(missing_ok=True)
        _mysql(f"DROP DATABASE IF EXISTS `{database}`", check=False)
