rule evaluate:
    """Held-out evaluation of one finished run: greedy and sampled success, entropy, world-model MSE per level."""
    input:
        model=f"{RUNS}/{{experiment}}/{{task}}/seed{{seed}}/model.pt",
        code=sources("evaluation/held_out.py"),
    output:
        f"{RUNS}/{{experiment}}/{{task}}/seed{{seed}}/eval.json",
    params:
        job=job_label("evaluate"),
        params_file=PARAMS_FILE,
        run_dir=lambda wildcards, input: os.path.dirname(input.model),
        settings=evaluation_settings("episodes", "seed"),
    log:
        f"{LOGS}/evaluate/{{experiment}}/{{task}}/seed{{seed}}.log",
    wildcard_constraints:
        seed=r"\d+",
    threads: 1
    conda:
        "../../environment.yml"
    resources:
        mem_mb=1000,
        runtime=5,
    shell:
        guarded(
            "wmil evaluate --params {params.params_file} --run-dir {params.run_dir}"
        )


rule analyze:
    """Representation analysis of one task: probes, k-means and t-SNE of every compared run's embeddings."""
    input:
        models=lambda wildcards: representation_models(wildcards.task),
        code=sources("evaluation/representation.py", "evaluation/held_out.py"),
    output:
        f"{ANALYSIS}/{{task}}.json",
    params:
        job=job_label("analyze"),
        params_file=PARAMS_FILE,
        runs_root=RUNS,
        settings=evaluation_settings("representation", "seed"),
    log:
        f"{LOGS}/analyze/{{task}}.log",
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
