# docs/observability.md: stats as JSON, tracing, the progress line.
conveyor_docs_example(observability)
