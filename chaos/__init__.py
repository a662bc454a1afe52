"""The reliability proof harness of issue 5: ``python -m chaos``.

It runs the receiver as real OS processes (``hotglue-webhooks web`` / ``worker``) against
fake HotGlue and Slack servers, kills and starves them, and checks the promise: every
acknowledged webhook is acted on once. A tool for developers and CI; the service never
imports it (it needs the ``test`` extra: hypothesis).
"""
