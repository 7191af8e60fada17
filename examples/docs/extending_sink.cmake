# docs/extending.md, "A sink": a user's sink whose batch type declares delivered_batch.
conveyor_docs_example(extending_sink)
