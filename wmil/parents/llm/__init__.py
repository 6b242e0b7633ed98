"""The LLM parent, in the order a request flows: ``prompts`` (what is asked and how answers are
read), ``request`` (a prompt with its schema, parser and cache keys), ``protocols`` (how per-state
answers become verdicts), ``sandbox`` (LLM-written programs checked and run as untrusted data),
``programs`` (the ``program`` protocol: the rule written once as code, applied as a table),
``codes`` (which rows share a request), ``answers`` (the memo, the response cache, the verdict codes
and the ``on_invalid`` policy), ``cache`` (responses in SQLite), ``transport`` (the endpoint: API key,
retries, concurrency), ``models`` (the bundled GGUF files, pinned by sha256), ``server`` (the
bundled local llama.cpp server) and ``parent`` (:class:`~wmil.parents.llm.parent.ParentLLM`,
which composes them). Import from the submodules: this package imports nothing, so that the
light ones (``server``) load without the OpenAI client."""
