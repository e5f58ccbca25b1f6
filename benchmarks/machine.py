"""What a benchmark ran on, for its results file: the library's environment record, CPUs and load."""
import os
import platform

from mol_edu.core import environment_info


def machine(load_before, # os.getloadavg() when the benchmark started
            device: str = "cpu", end_key: str = "load_average_after") -> dict:
    "environment_info plus the logical CPUs, the architecture and the load average at the start and now."
    return {**environment_info(device), "logical_cpus": os.cpu_count(), "machine": platform.machine(),
            "load_average_before": load_before, end_key: os.getloadavg()}
