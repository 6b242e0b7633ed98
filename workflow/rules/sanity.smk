rule sanity:
    """The plan's 'If MVP fails' checks: random ~1/A, oracle 1.0, gradients, probe; the env's speed
    apart (measured, never judged)."""
    input:
        code=sources("evaluation/sanity.py"),
    output:
        report=SANITY,
        timing=f"{BENCHMARKS}/sanity_speed.json",
    params:
        params_file=PARAMS_FILE,
        fingerprint=sanity_fingerprint(),
    log:
        f"{LOGS}/sanity.log",
    threads: 1
    conda:
        "../../environment.yml"
    resources:
        mem_mb=2000,
        runtime=10,
    shell:
        "wmil sanity --params {params.params_file} --out {output.report} --timing {output.timing} > {log} 2>&1"
