"""Keycloak as the development and test identity provider: download, run in dev mode, load a realm.

The console signs people in through OIDC (authorization code with PKCE); the services verify the
access token Keycloak issues with RS256 against its JWKS. This module runs that identity provider
locally:

* the ``org.keycloak:keycloak-quarkus-dist`` zip is downloaded once from Maven Central (its SHA-1
  checked) and unpacked into ``~/.cache/tandem/keycloak-<version>``;
* it runs with a Java 21+ runtime (Keycloak's minimum), found in ``TANDEM_KEYCLOAK_JAVA_HOME``,
  ``JAVA_HOME``, ``/usr/lib/jvm`` or ``/opt``, newest first;
* ``kc.sh start-dev`` with an in-memory database, so every start is clean (about 16 s once the
  distribution has been built for dev mode, about 35 s the first time);
* the realm (:func:`realm`) is created through the admin REST API once the server answers.

**The claims are mapped in one place**, the realm's ``tandem`` client scope (:func:`realm`), to
what ``services.common.auth.TokenVerifier`` reads: ``roles`` (the user's realm roles, a list of
strings), ``employee_id`` and ``department_id`` (user attributes), ``aud`` including ``tandem``,
and ``sub`` as the username (so audit logs name people, not Keycloak's user UUIDs); plus ``name``
(the console's header shows it). A production
identity provider must issue the same claims; see docs/console.md.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import subprocess
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from devtools.stack.process import ManagedProcess, free_port

__all__ = [
    "KEYCLOAK_VERSION",
    "REALM",
    "ROLES",
    "KeycloakServer",
    "RealmUser",
    "ensure_distribution",
    "find_java",
    "realm",
]

KEYCLOAK_VERSION = "26.4.7"
MAVEN_CENTRAL = "https://repo1.maven.org/maven2"
REALM = "tandem"
CONSOLE_CLIENT = "tandem-console"
AUDIENCE = "tandem"
ROLES = ("hr_admin", "dept_head", "manager", "employee", "ops", "finance")
"""Realm roles. ``finance`` is issued already; the services admit it once ``Role`` knows it."""
MIN_JAVA = 21

Progress = Callable[[str], None]


def _report(progress: Progress | None, message: str) -> None:
    if progress is not None:
        progress(message)


# -- the distribution ---------------------------------------------------------------------------
def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "tandem"


def _dist_url(version: str) -> str:
    return f"{MAVEN_CENTRAL}/org/keycloak/keycloak-quarkus-dist/{version}/keycloak-quarkus-dist-{version}.zip"


async def ensure_distribution(version: str = KEYCLOAK_VERSION, progress: Progress | None = None) -> Path:
    """The unpacked distribution (its home directory), downloaded and checked on first use."""
    home = cache_dir() / f"keycloak-{version}"
    if (home / "bin" / "kc.sh").is_file():
        return home
    cache_dir().mkdir(parents=True, exist_ok=True)
    archive = cache_dir() / f"keycloak-{version}.zip"
    url = _dist_url(version)
    async with httpx.AsyncClient(timeout=httpx.Timeout(300.0, connect=10.0), follow_redirects=True) as http:
        expected = (await http.get(f"{url}.sha1")).raise_for_status().text.split()[0].strip()
        if not archive.is_file() or _sha1(archive) != expected:
            _report(progress, f"downloading Keycloak {version} from Maven Central (about 160 MB)")
            partial = archive.with_suffix(f".part.{os.getpid()}")
            async with http.stream("GET", url) as response:
                response.raise_for_status()
                with partial.open("wb") as out:
                    async for chunk in response.aiter_bytes(1 << 20):
                        out.write(chunk)
            if _sha1(partial) != expected:
                partial.unlink()
                raise RuntimeError(f"the Keycloak download from {url} does not match its SHA-1 {expected}")
            os.replace(partial, archive)
    _report(progress, f"unpacking Keycloak {version} into {cache_dir()}")
    staging = cache_dir() / f".keycloak-{version}.{os.getpid()}"
    with zipfile.ZipFile(archive) as bundle:
        bundle.extractall(staging)
    unpacked = staging / f"keycloak-{version}"
    for script in (unpacked / "bin").glob("*.sh"):
        script.chmod(0o755)
    try:
        os.replace(unpacked, home)
    except OSError:  # another process unpacked it meanwhile
        if not (home / "bin" / "kc.sh").is_file():
            raise
    staging.rmdir() if staging.exists() and not any(staging.iterdir()) else None
    return home


def _sha1(path: Path) -> str:
    digest = hashlib.sha1()  # noqa: S324 - Maven Central publishes SHA-1 checksums
    with path.open("rb") as source:
        for block in iter(lambda: source.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _java_major(java: Path) -> int | None:
    try:
        out = subprocess.run([str(java), "-version"], capture_output=True, text=True, timeout=20, check=False)
    except OSError:
        return None
    match = re.search(r'version "(\d+)', out.stderr + out.stdout)
    return int(match.group(1)) if match else None


def find_java(minimum: int = MIN_JAVA) -> Path:
    """A Java home with Java ``minimum``+ (Keycloak 26 needs 21): the configured one, else the newest found."""
    configured = [os.environ.get("TANDEM_KEYCLOAK_JAVA_HOME"), os.environ.get("JAVA_HOME")]
    candidates = [Path(c) for c in configured if c]
    for root in (Path("/usr/lib/jvm"), Path("/opt")):
        if root.is_dir():
            candidates += sorted((p for p in root.iterdir() if (p / "bin" / "java").is_file()), reverse=True)
    found: list[tuple[int, Path]] = []
    for home in candidates:
        major = _java_major(home / "bin" / "java")
        if major is not None and major >= minimum:
            if home in (Path(c) for c in configured if c):
                return home
            found.append((major, home))
    if not found:
        raise FileNotFoundError(
            f"Keycloak needs Java {minimum}+; none was found in TANDEM_KEYCLOAK_JAVA_HOME, JAVA_HOME, /usr/lib/jvm "
            "or /opt (Debian: apt-get install temurin-25-jdk or openjdk-21-jdk)"
        )
    return max(found)[1]


# -- the realm ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class RealmUser:
    """A person who can sign in: realm roles plus the employee and department the services scope by."""

    username: str
    password: str
    roles: Sequence[str]
    first_name: str = ""
    last_name: str = ""
    employee_id: str | None = None
    department_id: str | None = None
    locale: str | None = None
    display_name: str | None = None
    """The ``name`` claim, as people write their name (张伟, not "伟 张"); default: first and last name."""

    def representation(self) -> dict[str, Any]:
        attributes: dict[str, list[str]] = {
            "display_name": [self.display_name or f"{self.first_name} {self.last_name}".strip() or self.username]
        }
        if self.employee_id:
            attributes["employee_id"] = [self.employee_id]
        if self.department_id:
            attributes["department_id"] = [self.department_id]
        if self.locale:
            attributes["locale"] = [self.locale]
        return {
            "username": self.username,
            "enabled": True,
            "emailVerified": True,
            "firstName": self.first_name or self.username,
            "lastName": self.last_name or "-",
            "email": f"{self.username}@example.com",
            "attributes": attributes,
            "credentials": [{"type": "password", "value": self.password, "temporary": False}],
            "realmRoles": list(self.roles),
        }


def _mapper(name: str, kind: str, config: dict[str, str]) -> dict[str, Any]:
    claims = {"access.token.claim": "true", "id.token.claim": "true", "userinfo.token.claim": "true"}
    return {"name": name, "protocol": "openid-connect", "protocolMapper": kind, "config": {**claims, **config}}


TANDEM_CLAIMS: list[dict[str, Any]] = [
    _mapper("roles", "oidc-usermodel-realm-role-mapper",
            {"claim.name": "roles", "multivalued": "true", "jsonType.label": "String"}),
    _mapper("employee_id", "oidc-usermodel-attribute-mapper",
            {"user.attribute": "employee_id", "claim.name": "employee_id", "jsonType.label": "String"}),
    _mapper("department_id", "oidc-usermodel-attribute-mapper",
            {"user.attribute": "department_id", "claim.name": "department_id", "jsonType.label": "String"}),
    _mapper("name", "oidc-usermodel-attribute-mapper",
            {"user.attribute": "display_name", "claim.name": "name", "jsonType.label": "String"}),
    _mapper("sub is the username", "oidc-usermodel-property-mapper",
            {"user.attribute": "username", "claim.name": "sub", "jsonType.label": "String"}),
    {**_mapper("audience tandem", "oidc-audience-mapper",
               {"included.custom.audience": AUDIENCE, "id.token.claim": "false"})},
]  # fmt: skip
"""The one place where identity-provider data becomes the claims the services read."""


def realm(
    *,
    console_urls: Sequence[str],
    client_secret: str,
    users: Sequence[RealmUser] = (),
    name: str = REALM,
    access_token_seconds: int = 300,
) -> dict[str, Any]:
    """The realm: its roles, the ``tandem`` client scope with the claim mappers, and the console's client.

    The console is a confidential client that must use PKCE (S256); it may come back only to
    ``/console/oidc/callback`` and ``/console/sign-in`` of the given console URLs.
    """
    redirects = [f"{u.rstrip('/')}/console/oidc/callback" for u in console_urls]
    after_logout = "##".join(f"{u.rstrip('/')}/console/sign-in*" for u in console_urls)
    return {
        "realm": name,
        "enabled": True,
        "accessTokenLifespan": access_token_seconds,
        "ssoSessionIdleTimeout": 8 * 3600,
        "ssoSessionMaxLifespan": 24 * 3600,
        "internationalizationEnabled": True,
        "supportedLocales": ["en", "zh-CN"],
        "defaultLocale": "en",
        "roles": {"realm": [{"name": role} for role in ROLES]},
        "clientScopes": [
            {
                "name": "tandem",
                "protocol": "openid-connect",
                "attributes": {"include.in.token.scope": "true"},
                "protocolMappers": TANDEM_CLAIMS,
            }
        ],
        "clients": [
            {
                "clientId": CONSOLE_CLIENT,
                "name": "Tandem console",
                "enabled": True,
                "protocol": "openid-connect",
                "publicClient": False,
                "secret": client_secret,
                "standardFlowEnabled": True,
                "directAccessGrantsEnabled": False,
                "redirectUris": redirects,
                "webOrigins": ["+"],
                "attributes": {"pkce.code.challenge.method": "S256", "post.logout.redirect.uris": after_logout},
                "defaultClientScopes": ["tandem", "basic", "profile", "roles", "web-origins", "acr"],
                "optionalClientScopes": ["offline_access"],
            }
        ],
        "users": [u.representation() for u in users],
    }


USER_PROFILE_ATTRIBUTES = ("employee_id", "department_id", "display_name")
"""Declared in the realm's user profile (Keycloak drops undeclared attributes)."""


# -- the server ----------------------------------------------------------------------------------
@dataclass
class KeycloakServer:
    """``kc.sh start-dev`` on 127.0.0.1 with an in-memory database and one realm loaded over REST."""

    state_dir: Path
    port: int = field(default_factory=free_port)
    version: str = KEYCLOAK_VERSION
    admin_password: str = field(default_factory=lambda: os.urandom(12).hex())
    process: ManagedProcess | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def issuer(self, name: str = REALM) -> str:
        return f"{self.url}/realms/{name}"

    def jwks_url(self, name: str = REALM) -> str:
        return f"{self.issuer(name)}/protocol/openid-connect/certs"

    async def start(self, progress: Progress | None = None, *, timeout: float = 180.0) -> None:
        home = await ensure_distribution(self.version, progress)
        java_home = find_java()
        self.state_dir.mkdir(parents=True, exist_ok=True)
        env = {
            "JAVA_HOME": str(java_home),
            "PATH": f"{java_home / 'bin'}:{os.environ.get('PATH', '')}",
            "KC_BOOTSTRAP_ADMIN_USERNAME": "admin",
            "KC_BOOTSTRAP_ADMIN_PASSWORD": self.admin_password,
            # Transaction logs per instance, not in the shared distribution directory. C1 only:
            # a development server on a small machine starts faster with the quick JIT alone.
            "JAVA_OPTS_APPEND": (
                f"-Dcom.arjuna.ats.arjuna.objectstore.objectStoreDir={self.state_dir / 'tx'} -XX:TieredStopAtLevel=1"
            ),
            "JAVA_OPTS_KC_HEAP": "-Xms64m -Xmx512m",
        }
        argv = [
            str(home / "bin" / "kc.sh"),
            "start-dev",
            "--db=dev-mem",
            "--http-host=127.0.0.1",
            f"--http-port={self.port}",
            f"--http-management-port={free_port()}",
            "--cache=local",
            "--health-enabled=false",
        ]
        _report(progress, f"starting Keycloak {self.version} on {self.url} (Java {java_home.name})")
        self.process = ManagedProcess("keycloak", argv, log_path=self.state_dir / "keycloak.log", env=env)
        self.process.start()

        async def answers() -> bool:
            async with httpx.AsyncClient(timeout=2.0) as http:
                response = await http.get(f"{self.url}/realms/master/.well-known/openid-configuration")
                return response.status_code == 200

        await self.process.wait_ready(answers, timeout=timeout)

    async def admin_token(self, http: httpx.AsyncClient) -> str:
        response = await http.post(
            f"{self.url}/realms/master/protocol/openid-connect/token",
            data={"grant_type": "password", "client_id": "admin-cli", "username": "admin",
                  "password": self.admin_password},
        )  # fmt: skip
        response.raise_for_status()
        return str(response.json()["access_token"])

    async def load_realm(self, representation: dict[str, Any]) -> None:
        """Create the realm, declare the user-profile attributes, then create its users."""
        users = representation.get("users", [])
        body = {k: v for k, v in representation.items() if k != "users"}
        name = representation["realm"]
        async with httpx.AsyncClient(timeout=60.0) as http:
            headers = {"Authorization": f"Bearer {await self.admin_token(http)}"}
            admin = f"{self.url}/admin/realms"
            (await http.post(admin, json=body, headers=headers)).raise_for_status()
            profile = (await http.get(f"{admin}/{name}/users/profile", headers=headers)).raise_for_status().json()
            known = {a["name"] for a in profile.get("attributes", [])}
            for attribute in USER_PROFILE_ATTRIBUTES:
                if attribute not in known:
                    profile["attributes"].append(
                        {"name": attribute, "displayName": attribute, "multivalued": False,
                         "permissions": {"view": ["admin", "user"], "edit": ["admin"]}}
                    )  # fmt: skip
            (await http.put(f"{admin}/{name}/users/profile", json=profile, headers=headers)).raise_for_status()
            await asyncio.gather(*(self._create_user(http, headers, name, user) for user in users))

    async def _create_user(
        self, http: httpx.AsyncClient, headers: dict[str, str], name: str, user: dict[str, Any]
    ) -> None:
        roles = user.get("realmRoles", [])
        body = {k: v for k, v in user.items() if k != "realmRoles"}
        admin = f"{self.url}/admin/realms/{name}"
        created = await http.post(f"{admin}/users", json=body, headers=headers)
        created.raise_for_status()
        user_id = created.headers["location"].rsplit("/", 1)[-1]
        wanted = [
            (await http.get(f"{admin}/roles/{role}", headers=headers)).raise_for_status().json() for role in roles
        ]
        if wanted:
            mapping = await http.post(f"{admin}/users/{user_id}/role-mappings/realm", json=wanted, headers=headers)
            mapping.raise_for_status()

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()
            self.process = None
