# docs/tuning.md's example (conveyor_docs_example comes from docs_examples.cmake, read first).
conveyor_docs_example(tuning)
