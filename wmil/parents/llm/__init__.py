"""The LLM parent, in the order a request flows: ``prompts`` (what is asked and how answers are
read), ``protocols`` (how answers become verdicts), ``transport`` (one request to an
OpenAI-compatible endpoint), ``cache`` (responses in SQLite), ``server`` (the bundled local
llama.cpp server) and ``parent`` (:class:`~wmil.parents.llm.parent.ParentLLM`: memo, cache,
retries and the fallback policy). Import from the submodules: this package imports nothing, so
that the light ones (``server``) load without the OpenAI client."""
