"""longthought.teacher: the one API client (limits, retries, cache, budget), the sim teacher,
and trace collection.

Other parts use:
- `endpoint.open_endpoint(teacher_spec)` -> base_url (starts the sim server for `base_url: sim`)
- `collect.run_requests(teacher_spec, requests, cache_dir, base_url, progress, tag)` with
  `collect.ChatRequest` in and `collect.ChatResult` out (`arun_requests` inside an event loop)
"""
