"""``python -m hotglue_webhooks`` is the ``hotglue-webhooks`` command."""

from hotglue_webhooks.cli import main

main()
