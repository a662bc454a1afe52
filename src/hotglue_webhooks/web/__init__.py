"""HTTP: the webhook endpoint, the admin API and health checks (Flask blueprints).

Views parse and answer; they never call Slack or HotGlue (that is the worker's job).
"""
