"""Installing sniper as the deployment guide does: the Docker image's install steps, performed for
real, and the systemd unit's hardening as ``systemd-analyze security`` scores it.

Docker
------

No Docker engine runs here, so the image itself is not built. Instead this test does what the
two stages do, with the commands taken from the Dockerfile itself:

- builder: copy what the ``COPY`` lines name (minus what ``.dockerignore`` excludes) into an
  empty directory and run the builder's ``RUN`` (``pip wheel --wheel-dir /wheels .``), with
  ``/wheels`` pointing at a temporary directory;
- runtime: a new venv (no access to the development venv or the source tree) and the runtime's
  ``RUN`` (``pip install --no-index --find-links=/wheels sniper`` and the import check), with
  pip's configuration switched off so the wheel directory is the only source;

then runs ``sniper --version`` and ``sniper demo`` from that venv and checks that the package
really came from the installed wheel, not from the editable checkout.

systemd
-------
``systemd-analyze security --offline=yes`` (systemd >= 250) scores the unit file as it would be
installed; the score is recorded in docs/deploy.md and must not get worse than
:data:`MAX_EXPOSURE` (``systemd-analyze verify`` is in ``test_systemd_unit.py``).
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from tests.ops.test_dockerfile import DOCKERFILE, ROOT, Instruction, parse_dockerfile, stages
from tests.ops.test_systemd_unit import UNIT

WHEELS_IN_IMAGE = "/wheels"
STEP_TIMEOUT_S = 120
MAX_EXPOSURE = 1.5
"""systemd's exposure score (0 best, 10 worst); 1.2 today, "OK" up to 2.9."""
# Patterns of .dockerignore that apply inside the copied directories.
IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", "*.sqlite3", "*.jsonl")


def project_version() -> str:
    with (ROOT / "pyproject.toml").open("rb") as f:
        version = tomllib.load(f)["project"]["version"]
    assert isinstance(version, str)
    return version


def run_commands(instructions: list[Instruction]) -> list[str]:
    """The shell command of every ``RUN`` of a stage, without ``--mount=...`` style flags."""
    commands = []
    for ins in instructions:
        if ins.op == "RUN":
            commands.append(re.sub(r"^(--\S+\s+)+", "", ins.args))
    return commands


def clean_env(path_first: Path, *, pip_config: bool) -> dict[str, str]:
    """The environment of one step: ``python`` is ``path_first/python``; no PYTHONPATH, no
    virtualenv leaking in; pip's own configuration (the local package index) only if asked."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PYTHON", "VIRTUAL_ENV", "PIP_")) and k != "PATH"
    }
    env["PATH"] = f"{path_first}{os.pathsep}{os.environ.get('PATH', '/usr/bin:/bin')}"
    env.update(PYTHONUNBUFFERED="1", PIP_NO_CACHE_DIR="1", PIP_DISABLE_PIP_VERSION_CHECK="1")
    if not pip_config:
        env["PIP_CONFIG_FILE"] = os.devnull
    return env


def sh(command: str, *, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(  # noqa: S603 - a command taken from our own Dockerfile
        ["/bin/sh", "-ec", command],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=STEP_TIMEOUT_S, check=False,
    )
    assert result.returncode == 0, f"$ {command}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result


def copy_build_context(builder: list[Instruction], dest: Path) -> None:
    """Do the builder's ``COPY src... dst`` lines from the repository into ``dest``."""
    for ins in builder:
        if ins.op != "COPY":
            continue
        parts = [p for p in shlex.split(ins.args) if not p.startswith("--")]
        *sources, target = parts
        target_dir = dest / target
        for source in sources:
            origin = ROOT / source
            if origin.is_dir():
                # "COPY sniper ./sniper": the directory's contents go to the target.
                shutil.copytree(origin, target_dir, ignore=IGNORED, dirs_exist_ok=True)
            else:
                target_dir.mkdir(parents=True, exist_ok=True)
                shutil.copy2(origin, target_dir / origin.name)


def test_dockerfile_install_steps_in_a_fresh_venv(tmp_path: Path) -> None:
    builder, runtime = stages(parse_dockerfile(DOCKERFILE.read_text(encoding="utf-8")))
    build_cmds, runtime_cmds = run_commands(builder), run_commands(runtime)
    assert any("pip wheel" in c for c in build_cmds)
    installs = [c for c in runtime_cmds if "pip install" in c]
    assert len(installs) == 1

    wheels = tmp_path / "wheels"
    src = tmp_path / "src"
    src.mkdir()
    copy_build_context(builder, src)
    assert (src / "pyproject.toml").is_file()
    assert (src / "sniper" / "cli.py").is_file()
    assert not list(src.rglob("__pycache__"))

    # -- builder stage: wheels for the project and every dependency ----------------------
    dev_bin = Path(sys.executable).parent  # "python" here is the interpreter running the tests
    for command in build_cmds:
        sh(command.replace(WHEELS_IN_IMAGE, str(wheels)), cwd=src,
           env=clean_env(dev_bin, pip_config=True))
    built = sorted(p.name for p in wheels.glob("*.whl"))
    version = project_version()
    assert f"sniper-{version}-py3-none-any.whl" in built, built

    # -- runtime stage: a fresh venv, offline install from the wheel directory only ------------
    venv = tmp_path / "venv"
    subprocess.run(  # noqa: S603 - the running interpreter's own venv module
        [sys.executable, "-m", "venv", str(venv)],
        check=True, capture_output=True, timeout=STEP_TIMEOUT_S,
    )
    venv_bin = venv / "bin"
    runtime_env = clean_env(venv_bin, pip_config=False)
    elsewhere = tmp_path / "elsewhere"  # not the checkout: nothing importable by accident
    elsewhere.mkdir()
    sh(installs[0].replace(WHEELS_IN_IMAGE, str(wheels)), cwd=elsewhere, env=runtime_env)

    where = sh('python -c "import sniper, uvloop; print(sniper.__file__)"',
               cwd=elsewhere, env=runtime_env).stdout.strip()
    assert Path(where).is_relative_to(venv), where  # the installed wheel, not the checkout
    assert not Path(where).is_relative_to(ROOT)

    # -- the entry point of the image ------------------------------------------------------
    sniper = venv_bin / "sniper"
    assert sniper.is_file()
    shown = sh(f"{sniper} --version", cwd=elsewhere, env=runtime_env)
    assert shown.stdout.strip() == f"sniper {version}"

    demo = subprocess.run(  # noqa: S603 - the console script we just installed
        [str(sniper), "demo"],
        cwd=elsewhere, env=runtime_env, capture_output=True, text=True,
        timeout=STEP_TIMEOUT_S, check=False,
    )
    output = demo.stdout + demo.stderr
    assert demo.returncode == 0, output[-4000:]
    assert "simulator up at http://127.0.0.1:" in output
    assert re.search(r"BUY NEWCOIN_USDT: IOC", output), output[-4000:]
    assert re.search(r"buys filled: [1-9]", output), output[-4000:]
    assert "Traceback" not in output


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ("--mount=type=bind,from=builder,source=/wheels,target=/wheels pip install x",
         "pip install x"),
        ("--mount=a --network=none echo hi", "echo hi"),
        ("python -m pip wheel --wheel-dir /wheels .", "python -m pip wheel --wheel-dir /wheels ."),
    ],
)
def test_run_flags_are_stripped(args: str, expected: str) -> None:
    assert run_commands([Instruction("RUN", args)]) == [expected]


# -- systemd ---------------------------------------------------------------------------------


def security_offline(unit: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - fixed argv on a unit file we wrote
        ["systemd-analyze", "security", "--offline=yes", "--no-pager", *extra, str(unit)],  # noqa: S607
        capture_output=True, text=True, timeout=60, check=False,
    )


def test_systemd_analyze_security_scores_the_unit(tmp_path: Path) -> None:
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze not installed")
    unit = tmp_path / UNIT.name
    shutil.copy2(UNIT, unit)
    result = security_offline(unit)
    output = result.stdout + result.stderr
    if result.returncode != 0 and ("unrecognized option" in output or "--offline" in output):
        pytest.skip(f"this systemd-analyze has no --offline mode: {output.strip()[:200]}")
    assert result.returncode == 0, output
    found = re.search(r"Overall exposure level for sniper\.service: (\d+\.\d+) (\w+)", output)
    assert found, output
    exposure, verdict = float(found.group(1)), found.group(2)
    assert exposure <= MAX_EXPOSURE, output
    assert verdict == "OK"
    # The settings the score rests on are all seen as set (a typo would be ignored otherwise).
    for setting in ("NoNewPrivileges=", "ProtectSystem=", "ProtectHome=", "PrivateTmp=",
                    "MemoryDenyWriteExecute=", "RestrictAddressFamilies=~AF_PACKET"):
        line = next((ln for ln in output.splitlines() if setting in ln), "")
        assert line.startswith("✓"), (setting, line)
    # systemd's own gate: --threshold is on its 0-100 scale.
    gate = security_offline(unit, f"--threshold={int(MAX_EXPOSURE * 10)}")
    assert gate.returncode == 0, gate.stdout + gate.stderr
