"""longthought.teacher: the one request path for teachers, judges and API models (cache, limits,
budget, keys), one small module per transport (`online`, `local`; batch next), the sim teacher,
and trace collection.

Other parts use:
- `endpoint.open_endpoint(teacher_spec)` -> base_url (starts the sim server for `base_url: sim`)
- `collect.run_requests(teacher_spec, requests, cache_dir, base_url, progress, tag)` with
  `collect.ChatRequest` in and `collect.ChatResult` out (`arun_requests` inside an event loop,
  `iter_results` to stream results out of the cache)
- `guard.forbid(what)`: raise when a compute-node job would call an API or write the cache
"""
