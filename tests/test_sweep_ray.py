"""The Ray backend gives the same collected tables as the local one: a small simulate grid
and a tiny fused parity sweep, through one local Ray started by the backend itself with
two CPUs (Ray's start-up takes seconds, so it is started once)."""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from quanta import sweep
from quanta.sweep import backends

ray = pytest.importorskip("ray")
EXAMPLES = Path(__file__).resolve().parents[1] / "quanta" / "sweep" / "examples"


def test_ray_and_local_backends_collect_the_same_tables(tmp_path):
    specs = {name: sweep.load(EXAMPLES / f"{name}.toml")
             for name in ("simulate-grid", "parity-tiny")}
    tables = {}
    for name, spec in specs.items():
        sweep.run(spec, tmp_path / f"{name}-local", backend="local", max_parallel=2,
                  progress=False)
        tables[name, "local"] = sweep.collect(tmp_path / f"{name}-local")[0]
    assert backends.ray_init(ray, None, max_parallel=2)
    try:
        assert ray.cluster_resources()["CPU"] == 2
        for name, spec in specs.items():
            result = sweep.run(spec, tmp_path / f"{name}-ray", backend="ray", progress=False)
            assert result["done"] == len(spec.jobs) and not result["failed_jobs"], result
            tables[name, "ray"] = sweep.collect(tmp_path / f"{name}-ray")[0]
    finally:
        ray.shutdown()
    for name, spec in specs.items():
        local, on_ray = (tables[name, b].drop(columns="wall_s") for b in ("local", "ray"))
        assert len(local) == (8 if name == "parity-tiny" else len(spec.jobs))
        pd.testing.assert_frame_equal(local, on_ray, check_exact=True)
