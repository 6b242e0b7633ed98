rule sanity:
    """The plan's 'If MVP fails' checks: random ~1/A, oracle 1.0, gradients, probe; the env's speed
    apart (measured, never judged)."""
    output:
        report=SANITY,
        timing=SANITY_SPEED,
    params:
        code=code("evaluation/sanity.py", parent="deterministic"),
        params_file=PARAMS_FILE,
        fingerprint=sanity_fingerprint(),
    log:
        log_file("sanity"),
    benchmark:
        benchmark_file("sanity")
    threads: 1
    conda:
        "../../environment.yml"
    resources:
        mem_mb=2000,
        runtime=10,
    shell:
        "wmil sanity --params {params.params_file} --out {output.report} --timing {output.timing} > {log} 2>&1"
