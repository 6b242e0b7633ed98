rule llm_audit:
    """The LLM parent's verdicts against the rules on a stratified sample of every task x level."""
    output:
        audit=LLM_AUDIT,
        timing=LLM_AUDIT_TIMING,
    params:
        code=code("evaluation/llm_audit.py"),
        job=job_label("llm_audit"),
        params_file=PARAMS_FILE,
        settings=lambda wildcards: dataclasses.asdict(PARAMS.llm_audit),
        audited=audit_fingerprint(),
    log:
        log_file("llm_audit"),
    benchmark:
        benchmark_file("llm_audit")
    threads: 1
    conda:
        "../../environment.yml"
    resources:
        mem_mb=2000,
        runtime=30,
    shell:
        guarded(
            "wmil llm-audit --params {params.params_file} --out {output.audit} --timing {output.timing}"
        )
