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
        runs_root=RUNS,  # a str, recorded as it always was (a Path would not be: the record would change)
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
