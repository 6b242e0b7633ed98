# One train rule per group of experiments that share their seeds (SEED_GROUPS, rules/common.smk):
# `train` for the top-level seeds, e.g. `train_seeds_0_1_2` for an experiment with its own.
# Held-out evaluation runs in the same job: a job of its own would pay Python and torch start-up
# again for a second or two of work (one such job per experiment x task).
for _seeds, _experiments in SEED_GROUPS.items():

    rule:
        """Every seed of one experiment x task, one after the other in one process (start-up is paid
        once per job), each then evaluated on held-out episodes (greedy and sampled success,
        entropy, world-model MSE per level: eval.json). A killed job resumes each run from its last
        checkpoint on the next invocation, and a finished run is only re-finalised and re-evaluated
        (what a change of the evaluation settings costs)."""
        name:
            train_rule_name(_seeds)
        input:
            sanity=rules.sanity.output.report,  # runs wait for the sanity checks (which rerun only when what they check changes)
        output:
            metrics=seed_outputs("metrics.json", _seeds),
            curve=seed_outputs("curve.csv", _seeds),
            model=seed_outputs("model.pt", _seeds),
            evals=seed_outputs("eval.json", _seeds),
        wildcard_constraints:
            experiment=one_of(_experiments),
        params:
            job=job_label("train"),
            params_file=PARAMS_FILE,
            runs_root=layout.RUNS,
            seeds=" ".join(map(str, _seeds)),
            config_hash=run_config_hash,
            code=run_code,
            evaluation_code=evaluation_code_hash(),
            evaluation=evaluation_settings("episodes", "seed"),
        log:
            log_file("train/{experiment}/{task}"),
        benchmark:
            benchmark_file("train/{experiment}/{task}")
        threads: 1
        conda:
            "../../environment.yml"
        resources:
            mem_mb=4000,  # an LLM-taught run may start the bundled 1.5B model's server (about 1.5 GB)
            runtime=120,  # every seed of the experiment x task, one after the other
        shell:
            guarded(
                "wmil train --params {params.params_file} --experiment {wildcards.experiment}"
                " --task {wildcards.task} --seeds {params.seeds} --runs-root {params.runs_root}"
                " --resume auto --no-progress --evaluate --keep"
            )
