"""The `modelfarm` command against the live stack, typed as a user types it: login, push with
the build log live, predict with typed inputs and outputs downloaded, the read commands' JSON,
tokens, failures' exit codes and messages, and what a real terminal shows (under tmux)."""

import json
import os
import shlex
import shutil
import stat
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from tests.utils import API_URL, PASSWORD, ROOT

MODELFARM = ROOT / ".venv" / "bin" / "modelfarm"
DIGITS = ROOT / "examples" / "digits-onnx"
LABELS = json.loads((DIGITS / "samples" / "labels.json").read_text())
SPINNER = set("⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏")


@pytest.fixture
def user(new_user, tmp_path):
    """A user, and the environment of their shell: its own config folder, this farm's URL."""
    farm = new_user()
    env = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path / "config"), "MODELFARM_API": API_URL}
    env.pop("MODELFARM_TOKEN", None)
    return farm, env


def modelfarm(env: dict, *arguments: str, stdin: str = "") -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(MODELFARM), *arguments], env=env, input=stdin, capture_output=True, text=True,
        timeout=900,
    )  # fmt: skip


def logged_in(farm, env) -> dict:
    done = modelfarm(env, "login", "--email", farm.email, "--password-stdin", stdin=PASSWORD)
    assert done.returncode == 0, done.stderr
    return env


def test_login_push_predict_and_read_back(user, tmp_path):
    farm, env = user
    logged_in(farm, env)
    stored = Path(env["XDG_CONFIG_HOME"]) / "modelfarm" / "config.json"
    assert stat.S_IMODE(stored.stat().st_mode) == 0o600
    assert json.loads(stored.read_text())["token"].startswith("mf_")  # an API token, not a login

    pushed = modelfarm(env, "push", str(DIGITS), "--model", "digits")
    assert pushed.returncode == 0, pushed.stderr
    assert "package: sha256" in pushed.stderr  # the build log, streamed (built or reused)
    assert "digits v1 READY" in pushed.stdout and "digest  sha256:" in pushed.stdout

    sample = next(iter(LABELS))
    out = tmp_path / "out"
    run = modelfarm(env, "predict", "digits", "-i", f"image=@{DIGITS / 'samples' / sample}",
                    "-i", "top_k=2", "-o", str(out), "--json")  # fmt: skip
    assert run.returncode == 0, run.stderr
    answer = json.loads(run.stdout)
    assert answer["job"]["result"]["label"] == LABELS[sample]
    assert len(answer["job"]["result"]["top"]) == 2 and answer["job"]["inputs"]["top_k"] == 2
    assert {p.name for p in out.iterdir()} >= {"probabilities.csv", "result.json"}

    versions = json.loads(modelfarm(env, "versions", "digits", "--json").stdout)
    assert [(v["number"], v["status"]) for v in versions] == [(1, "READY")]
    jobs = json.loads(modelfarm(env, "jobs", "--json").stdout)
    assert [j["status"] for j in jobs] == ["SUCCEEDED"]
    assert "digits" in [m["name"] for m in json.loads(modelfarm(env, "models", "--json").stdout)]
    assert "READY" in modelfarm(env, "logs", versions[0]["id"]).stdout

    assert modelfarm(env, "rm", "job", jobs[0]["id"]).returncode == 0
    assert json.loads(modelfarm(env, "jobs", "--json").stdout) == []
    removed = modelfarm(env, "rm", "model", "digits")
    assert removed.returncode == 0 and "removed model" in removed.stdout, removed.stderr
    assert "digits" not in [
        m["name"] for m in json.loads(modelfarm(env, "models", "--json").stdout)
    ]
    gone = modelfarm(env, "rm", "version", versions[0]["id"])
    assert gone.returncode != 0 and "404" in gone.stderr + gone.stdout


def test_a_failing_push_exits_non_zero_with_the_reason(user, tmp_path):
    farm, env = user
    logged_in(farm, env)
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "predict.py").write_text(
        "class Predictor:\n    def setup(self):\n        raise RuntimeError('weights missing')\n"
        "    def predict(self, input_path, output_dir):\n        return {}\n"
    )
    pushed = modelfarm(env, "--progress", "quiet", "push", str(tmp_path / "broken"), "-m", "broken")
    assert pushed.returncode == 1
    assert "error: the build FAILED: " in pushed.stderr and "weights missing" in pushed.stderr
    assert "package: sha256" not in pushed.stderr  # quiet: no build log


def test_inputs_are_refused_by_the_command_and_by_the_farm(user):
    farm, env = user
    logged_in(farm, env)
    echo = "def predict(text: str, n: int = 1):\n    return {'t': text * n}\n"
    version = farm.build({"predict.py": echo})
    name = farm.http.get(f"/api/models/{version['model_id']}").json()["name"]
    not_a_number = modelfarm(env, "predict", name, "-i", "text=a", "-i", "n=many")
    assert not_a_number.returncode == 2 and "-i n: 'many' is not a integer" in not_a_number.stderr
    unknown = modelfarm(env, "predict", name, "-i", "colour=red")
    assert unknown.returncode == 2 and "this model's inputs are text, n" in unknown.stderr
    missing = modelfarm(env, "predict", name)
    assert missing.returncode == 1 and "'text' is a required property" in missing.stderr
    ran = modelfarm(env, "predict", f"{name}:1", "-i", "text=ab", "-i", "n=3", "-o", "/tmp")
    assert ran.returncode == 0 and json.loads(ran.stdout) == {"t": "ababab"}
    farm.set_alias(version["model_id"], "prod", version["id"])
    by_alias = modelfarm(env, "predict", f"{name}:prod", "-i", "text=x", "--json")
    assert by_alias.returncode == 0, by_alias.stderr
    assert json.loads(by_alias.stdout)["job"]["version_id"] == version["id"]
    no_alias = modelfarm(env, "predict", f"{name}:staging", "-i", "text=x")
    assert no_alias.returncode == 1 and "has no alias 'staging' (it has: prod)" in no_alias.stderr
    absent = modelfarm(env, "predict", f"{name}:7", "-i", "text=a")
    assert absent.returncode == 1 and f"{name} has no version 7" in absent.stderr


def test_tokens_are_made_listed_and_revoked_with_the_password(user):
    farm, env = user
    logged_in(farm, env)
    made = modelfarm(env, "tokens", "create", "ci", "--scope", "read", "--password-stdin",
                     "--json", stdin=PASSWORD)  # fmt: skip
    assert made.returncode == 0, made.stderr
    token = json.loads(made.stdout)
    listed = json.loads(modelfarm(env, "tokens", "list", "--password-stdin", "--json",
                                  stdin=PASSWORD).stdout)  # fmt: skip
    assert {t["name"] for t in listed} >= {"ci"} and all("token" not in t for t in listed)
    read_only = {**env, "MODELFARM_TOKEN": token["token"]}
    assert modelfarm(read_only, "models", "--json").returncode == 0
    elsewhere = {**env, "XDG_CONFIG_HOME": env["XDG_CONFIG_HOME"] + "-ci"}
    stored = modelfarm(elsewhere, "login", "--token", token["token"])
    assert stored.returncode == 0 and f"as {farm.email}" in stored.stdout
    assert modelfarm(elsewhere, "models", "--json").returncode == 0  # with the stored token
    refused = modelfarm(read_only, "push", str(DIGITS), "-m", "nope")
    assert refused.returncode == 1 and "build" in refused.stderr and "HTTP 403" in refused.stderr
    wrong = modelfarm(env, "tokens", "list", "--password-stdin", stdin="wrong-password")
    assert wrong.returncode == 1 and "HTTP 401" in wrong.stderr
    revoked = modelfarm(env, "tokens", "revoke", token["id"], "--password-stdin", stdin=PASSWORD)
    assert revoked.returncode == 0
    assert "HTTP 401" in modelfarm(read_only, "models").stderr


@pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")
def test_a_terminal_shows_a_spinner_while_building_and_plain_lines_otherwise(user, tmp_path):
    farm, env = user
    logged_in(farm, env)
    slow = tmp_path / "slow"
    slow.mkdir()
    (slow / "predict.py").write_text(
        "import time\nclass Predictor:\n    def setup(self):\n        time.sleep(4)\n"
        "    def predict(self, input_path, output_dir):\n        return {}\n"
    )
    session = f"mf-{uuid.uuid4().hex[:8]}"
    exports = " ".join(f"{k}={shlex.quote(env[k])}" for k in ("XDG_CONFIG_HOME", "MODELFARM_API"))
    command = f"env {exports} {MODELFARM} push {slow} -m slow; echo EXIT=$?; sleep 60"
    subprocess.run(["tmux", "new-session", "-d", "-s", session, "-x", "120", "-y", "40", command],
                   check=True)  # fmt: skip
    screens = []
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and "EXIT=" not in (screens or [""])[-1]:
            shown = subprocess.run(["tmux", "capture-pane", "-p", "-t", session],
                                   capture_output=True, text=True)  # fmt: skip
            screens.append(shown.stdout)
            time.sleep(0.1)
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], check=False)
    building = [s for s in screens if "building slow v1" in s and SPINNER & set(s)]
    assert building, "no screen showed the spinner beside 'building slow v1'"
    assert "slow v1 READY" in screens[-1] and "EXIT=0" in screens[-1]
    assert not any(SPINNER & set(s) for s in screens[-1:])  # the spinner is gone at the end

    plain = modelfarm(env, "push", str(slow), "-m", "slow")  # stderr is a pipe here
    assert plain.returncode == 0 and "building slow v2" in plain.stderr
    assert not SPINNER & set(plain.stderr) and "\x1b[" not in plain.stderr + plain.stdout


NESTED_OUTPUTS = """\
from pathlib import Path


def predict(text: str, output_dir: Path = None) -> dict:
    for folder in ("a", "b"):
        (output_dir / folder).mkdir()
        (output_dir / folder / "x.txt").write_text(folder + text)
    return {}
"""


def test_outputs_of_the_same_name_in_two_folders_both_land_under_the_output_folder(user, tmp_path):
    farm, env = user
    logged_in(farm, env)
    folder = tmp_path / "nested"
    folder.mkdir()
    (folder / "predict.py").write_text(NESTED_OUTPUTS)
    name = f"nested-{uuid.uuid4().hex[:6]}"
    assert modelfarm(env, "push", str(folder), "--model", name).returncode == 0
    out = tmp_path / "out"
    ran = modelfarm(env, "predict", name, "-i", "text=1", "-o", str(out))
    assert ran.returncode == 0, ran.stderr
    assert (out / "a" / "x.txt").read_text() == "a1" and (out / "b" / "x.txt").read_text() == "b1"
