# docs/extending.md, "A stream sink": a user's stream-kind sink written with public names only (core/stream.hpp).
conveyor_docs_example(extending_stream_sink)
