"""Dockerfile and .dockerignore: parsed and checked (no image is built: that needs the network)."""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"

SENSITIVE = re.compile(r"SECRET|KEY|TOKEN|PASSW|CREDENTIAL", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Instruction:
    """One Dockerfile instruction, continuation lines joined."""

    op: str
    args: str


def parse_dockerfile(text: str) -> list[Instruction]:
    instructions: list[Instruction] = []
    buffer = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not buffer and (not line or line.startswith("#")):
            continue
        if buffer and line.startswith("#"):
            continue  # comments inside a continued instruction are dropped by Docker
        if line.endswith("\\"):
            buffer += line[:-1] + " "
            continue
        buffer += line
        op, _, args = buffer.strip().partition(" ")
        instructions.append(Instruction(op.upper(), args.strip()))
        buffer = ""
    assert not buffer, "dangling line continuation"
    return instructions


def stages(instructions: list[Instruction]) -> list[list[Instruction]]:
    """Split at FROM; each stage starts with its FROM."""
    out: list[list[Instruction]] = []
    for ins in instructions:
        if ins.op == "FROM":
            out.append([ins])
        elif out:
            out[-1].append(ins)
    return out


@pytest.fixture(scope="module")
def instructions() -> list[Instruction]:
    return parse_dockerfile(DOCKERFILE.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def final(instructions: list[Instruction]) -> list[Instruction]:
    return stages(instructions)[-1]


def test_parser_joins_continuations() -> None:
    parsed = parse_dockerfile("# c\nFROM a AS b\nRUN x \\\n  # inner\n  && y\n")
    assert parsed == [Instruction("FROM", "a AS b"), Instruction("RUN", "x  && y")]


def resolve_image(from_args: str, instructions: list[Instruction]) -> str:
    """The image of a FROM line, with global ARG defaults substituted."""
    defaults = {}
    for ins in instructions:
        if ins.op == "FROM":
            break
        if ins.op == "ARG" and "=" in ins.args:
            name, _, value = ins.args.partition("=")
            defaults[name] = value
    image = from_args.split()[0]
    return re.sub(r"\$\{(\w+)\}", lambda m: defaults[m.group(1)], image)


def test_multi_stage_on_python_311_slim(instructions: list[Instruction]) -> None:
    all_stages = stages(instructions)
    assert len(all_stages) >= 2
    builder, runtime = all_stages[0], all_stages[-1]
    assert builder[0].args.split()[-2:] == ["AS", "builder"]
    for stage in (builder, runtime):
        assert resolve_image(stage[0].args, instructions) == "python:3.11-slim"


def test_builder_builds_a_wheel_and_runtime_installs_it(instructions: list[Instruction]) -> None:
    builder, runtime = stages(instructions)[0], stages(instructions)[-1]
    builder_runs = " ".join(i.args for i in builder if i.op == "RUN")
    assert "pip wheel" in builder_runs
    copies = [i.args for i in builder if i.op == "COPY"]
    assert copies, "the builder copies the project"
    runtime_runs = " ".join(i.args for i in runtime if i.op == "RUN")
    assert re.search(r"pip install .*--no-index.*sniper", runtime_runs)
    assert "from=builder" in runtime_runs or any(
        i.op == "COPY" and "--from=builder" in i.args for i in runtime
    )
    assert "import uvloop" in runtime_runs  # uvloop is really installed


def test_runs_as_non_root(final: list[Instruction]) -> None:
    users = [i.args for i in final if i.op == "USER"]
    assert users, "the runtime stage sets USER"
    user = users[-1].split(":")[0]
    assert user not in ("root", "0")


def test_volume_for_state(final: list[Instruction]) -> None:
    volumes = [i.args for i in final if i.op == "VOLUME"]
    assert volumes
    declared: list[str] = []
    for v in volumes:
        declared += json.loads(v) if v.startswith("[") else v.split()
    assert "/var/lib/sniper" in declared


def test_healthcheck_hits_the_local_health_endpoint(final: list[Instruction]) -> None:
    (health,) = [i.args for i in final if i.op == "HEALTHCHECK"]
    assert "--interval=" in health
    assert "--timeout=" in health
    cmd = json.loads(health[health.index("CMD") + 3 :].strip())
    assert cmd[:2] == ["python", "-c"]
    assert "urllib.request" in cmd[2]
    assert "http://127.0.0.1:" in cmd[2]
    assert "/healthz" in cmd[2]
    assert "curl" not in health
    compile(cmd[2], "<healthcheck>", "exec")  # it is valid Python


def test_entrypoint_and_cmd(final: list[Instruction]) -> None:
    (entry,) = [json.loads(i.args) for i in final if i.op == "ENTRYPOINT"]
    (cmd,) = [json.loads(i.args) for i in final if i.op == "CMD"]
    assert entry == ["sniper"]
    assert cmd == ["run", "--config", "/etc/sniper/config.yaml"]


def _env_pairs(args: str) -> list[tuple[str, str]]:
    tokens = shlex.split(args)
    if len(tokens) == 2 and "=" not in tokens[0]:  # legacy "ENV NAME value"
        return [(tokens[0], tokens[1])]
    return [(name, value) for name, _, value in (t.partition("=") for t in tokens)]


def test_no_secrets_in_env_or_arg(instructions: list[Instruction]) -> None:
    checked = 0
    for ins in instructions:
        if ins.op in ("ENV", "ARG", "LABEL"):
            for name, value in _env_pairs(ins.args):
                checked += 1
                assert not SENSITIVE.search(name), f"{ins.op} {name} looks like a secret"
                assert not SENSITIVE.search(value), f"{ins.op} {name}={value} looks like a secret"
    assert checked > 0


def test_nothing_secret_is_copied(instructions: list[Instruction]) -> None:
    for ins in instructions:
        if ins.op in ("COPY", "ADD"):
            assert not SENSITIVE.search(ins.args), ins.args
            assert ".env" not in ins.args.split()
    assert not any(i.op == "ADD" for i in instructions), "use COPY (ADD fetches URLs, unpacks)"


def test_secret_detector_catches_secrets() -> None:
    bad = parse_dockerfile("FROM x\nENV GATE_API_SECRET=abc\nARG TOKEN\n")
    with pytest.raises(AssertionError):
        test_no_secrets_in_env_or_arg(bad)


def test_dockerignore_excludes_local_state_and_caches() -> None:
    patterns = {
        line.strip()
        for line in DOCKERIGNORE.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    }
    for required in (".venv", ".git", "state", ".pytest_cache", ".mypy_cache", ".ruff_cache"):
        assert required in patterns, required
    assert "**/__pycache__" in patterns
    assert any("gate_api_secret" in p for p in patterns)
    # The files the builder needs are not excluded.
    for needed in ("pyproject.toml", "README.md", "sniper"):
        assert needed not in patterns
