"""DDP on CPU: 2 torchrun processes (gloo) train in step with one process on the same global batch."""
import json
import subprocess
import sys

import pytest
import torch

from mol_edu.distributed import ddp_check_worker, distributed_env


def test_not_distributed_here():
    assert distributed_env() is None


def test_two_gloo_processes_match_one_process(tmp_path):
    script = tmp_path / "worker.py"
    script.write_text("import sys\nfrom mol_edu.distributed import ddp_check_worker\nddp_check_worker(sys.argv[1])\n")
    r = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                        str(script), str(tmp_path / "two.json")], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    ddp_check_worker(str(tmp_path / "one.json"))
    two, one = json.loads((tmp_path / "two.json").read_text()), json.loads((tmp_path / "one.json").read_text())
    assert two["world"] == 2 and one["world"] == 1
    assert len(two["losses"]) == len(one["losses"]) == 6
    assert torch.allclose(torch.tensor(two["losses"]), torch.tensor(one["losses"]), rtol=1e-4, atol=1e-5)
    assert torch.allclose(torch.tensor(two["weights"]), torch.tensor(one["weights"]), rtol=1e-4, atol=1e-5)
    # and training moved the weights (the comparison is not vacuous)
    assert one["losses"][-1] < one["losses"][0]
