rule analyze:
    """Representation analysis of one task: probes, k-means and t-SNE of every compared run's embeddings."""
    input:
        models=lambda wildcards: representation_models(wildcards.task),
    output:
        analysis=ANALYSIS_FILE,
    params:
        code=code("evaluation/representation.py", parent="deterministic"),
        job=job_label("analyze"),
        params_file=PARAMS_FILE,
        runs_root=layout.RUNS,
        settings=evaluation_settings("representation", "seed"),
    log:
        log_file("analyze/{task}"),
    benchmark:
        benchmark_file("analyze/{task}")
    threads: 1
    conda:
        "../../environment.yml"
    resources:
        mem_mb=2000,
        runtime=10,
    shell:
        guarded(
            "wmil analyze --params {params.params_file} --task {wildcards.task}"
            " --runs-root {params.runs_root} --out {output}"
        )


# Every representation analysis (rule summarize and status read them)
ANALYSIS_OUTPUTS = expand(rules.analyze.output.analysis, task=representation_tasks())


rule tabular:
    """The tabular reference: a lookup table that learns from the method's verdicts on its runs'
    settings and seeds (it memorises perfectly and generalises not at all)."""
    output:
        tabular=TABULAR,
    params:
        code=code("evaluation/tabular.py", parent="deterministic"),
        job=job_label("tabular"),
        params_file=PARAMS_FILE,
        fingerprint=tabular_fingerprint(),
        settings=evaluation_settings("episodes", "seed"),
    log:
        log_file("tabular"),
    benchmark:
        benchmark_file("tabular")
    threads: 1
    conda:
        "../../environment.yml"
    resources:
        mem_mb=1000,
        runtime=10,
    shell:
        guarded("wmil tabular --params {params.params_file} --out {output.tabular}")
