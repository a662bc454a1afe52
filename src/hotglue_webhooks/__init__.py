"""HotGlue job-lifecycle webhook receiver: receive, decide, act."""
