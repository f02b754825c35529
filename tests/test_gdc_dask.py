"""Per-file parsing runs on dask: threads by default, an active dask.distributed client unchanged."""
from __future__ import annotations

import numpy as np
import pytest

from omicsdata import synth, synth_gdc
from omicsdata.datasets.gdc_pancancer.builder import parse_modality, select_files


@pytest.fixture(scope="module")
def raw(tmp_path_factory):
    return synth_gdc.write_gdc_raw(tmp_path_factory.mktemp("gdcdask"), synth.CohortSpec(
        n_patients=12, n_cancer_types=2, n_genes=200, n_cpgs=100, n_mirnas=40, n_mutation_genes=50,
        n_proteins=20, seed=5))


def test_distributed_client_runs_the_parsing(raw):
    import distributed  # in the [test] extra
    chosen, _ = select_files(raw["index"])
    ents = [e for _, e in sorted(chosen["rna"].items())]
    X_thr, names = parse_modality("rna", ents, files_per_task=3)
    M_thr, genes = parse_modality("mutation", [e for _, e in sorted(chosen["mutation"].items())], files_per_task=3)
    with distributed.Client(n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None) as client:
        with distributed.get_task_stream(client) as ts:
            X_dist, names2 = parse_modality("rna", ents, files_per_task=3)
            M_dist, genes2 = parse_modality("mutation", [e for _, e in sorted(chosen["mutation"].items())],
                                            files_per_task=3)
        ran = [t for t in ts.data if "parse" in str(t.get("key", ""))]
    assert len(ran) >= 4  # the tasks ran on the cluster's worker
    np.testing.assert_array_equal(X_dist, X_thr)
    assert names2 == names and genes2 == genes
    assert (M_dist != M_thr).nnz == 0
    ids = [raw["id_map"][e["patient_id"]] for e in ents]
    np.testing.assert_array_equal(X_thr, raw["mdata"].mod["rna"][ids].X)
