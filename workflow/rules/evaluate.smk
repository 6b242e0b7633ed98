# One evaluate rule per group of experiments that share their seeds, as for train.
for _seeds, _experiments in SEED_GROUPS.items():

    rule:
        """Held-out evaluation of every seed of one experiment x task: greedy and sampled success,
        entropy, world-model MSE per level (one process, start-up paid once)."""
        name:
            seed_rule_name("evaluate", _seeds)
        input:
            models=seed_rule("train", _experiments[0]).output.model,
            code=sources("evaluation/held_out.py", "evaluation/evaluate.py"),
        output:
            evals=seed_outputs("eval.json", _seeds),
        wildcard_constraints:
            experiment=one_of(_experiments),
        params:
            job=job_label("evaluate"),
            params_file=PARAMS_FILE,
            run_dirs=lambda wildcards, input: " ".join(os.path.dirname(m) for m in input.models),
            settings=evaluation_settings("episodes", "seed"),
        log:
            log_file("evaluate/{experiment}/{task}"),
        benchmark:
            benchmark_file("evaluate/{experiment}/{task}")
        threads: 1
        conda:
            "../../environment.yml"
        resources:
            mem_mb=1000,
            runtime=10,
        shell:
            guarded(
                "wmil evaluate --params {params.params_file} --run-dir {params.run_dirs}"
            )


rule analyze:
    """Representation analysis of one task: probes, k-means and t-SNE of every compared run's embeddings."""
    input:
        models=lambda wildcards: representation_models(wildcards.task),
        code=sources("evaluation/representation.py", "evaluation/held_out.py", "evaluation/evaluate.py"),
    output:
        analysis=ANALYSIS_FILE,
    params:
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
