"""tap-matomo in another Meltano project: a new `meltano init` project adds it with the one command the
README gives (`meltano add tap-matomo --from-ref ...`), and `meltano run tap-matomo target-jsonl` lands
every action of the simulator."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import yaml
from matomo_simulator import MatomoSimulator

from tests.helpers import TOKEN
from tests.pipeline import MELTANO, ROOT

#: target-jsonl as the Hub describes it (the Hub is not reachable here: the test adds it from this file).
TARGET_JSONL = {
    "name": "target-jsonl",
    "namespace": "target_jsonl",
    "pip_url": "target-jsonl==0.1.4",
    "executable": "target-jsonl",
    "settings": [{"name": "destination_path", "kind": "string"}],
}


def meltano(project: Path, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [MELTANO, *args], cwd=project, env=env, capture_output=True, text=True, timeout=600, check=False
    )


def test_a_new_meltano_project_adds_the_tap_from_its_definition(simulator: MatomoSimulator, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MELTANO_", "TAP_", "TARGET_"))}
    env |= {"TAP_MATOMO_PIP_URL": str(ROOT / "tap-matomo")}  # a clone's tap folder, as the README says
    init = meltano(tmp_path, "init", "analytics", "--no_usage_stats", env=env)
    assert init.returncode == 0, init.stderr[-2000:]
    project = tmp_path / "analytics"

    added = meltano(
        project, "add", "tap-matomo", "--from-ref", str(ROOT / "tap-matomo" / "meltano-plugin.yml"), env=env
    )
    assert added.returncode == 0, added.stderr[-3000:]
    (tmp_path / "target-jsonl.yml").write_text(yaml.safe_dump(TARGET_JSONL))
    target = meltano(project, "add", "target-jsonl", "--from-ref", str(tmp_path / "target-jsonl.yml"), env=env)
    assert target.returncode == 0, target.stderr[-3000:]

    plugins = yaml.safe_load((project / "meltano.yml").read_text())["plugins"]
    tap = plugins["extractors"][0]
    assert (tap["name"], tap["pip_url"]) == ("tap-matomo", "$TAP_MATOMO_PIP_URL")
    assert "utilities" not in plugins  # `meltano add extractor ...` (Meltano 3's form) would make one
    settings = {s["name"]: s for s in tap["settings"]}
    assert settings["token_auth"]["sensitive"] is True
    assert settings["page_size"] == {**settings["page_size"], "kind": "integer", "value": 500}
    assert tap["settings_group_validation"] == [["url", "token_auth"]]

    run_env = env | {
        "TAP_MATOMO_URL": simulator.url,
        "TAP_MATOMO_TOKEN_AUTH": TOKEN,
        "TAP_MATOMO_SITE_IDS": "[1, 3]",
        "TARGET_JSONL_DESTINATION_PATH": str(tmp_path / "out"),
    }
    (tmp_path / "out").mkdir()
    done = meltano(project, "run", "tap-matomo", "target-jsonl", env=run_env)
    assert done.returncode == 0, done.stderr[-3000:]
    landed = [
        json.loads(line)["action_id"]
        for path in (tmp_path / "out").glob("visits_actions*.jsonl")
        for line in path.read_text().splitlines()
    ]
    truth = {**simulator.world.truth(1), **simulator.world.truth(3)}
    assert sorted(landed) == sorted(truth)
    assert TOKEN not in done.stdout + done.stderr
