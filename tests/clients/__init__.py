"""Tests of the HotGlue and Slack clients and of the fake peers (a package, so that this
directory's conftest does not replace the top-level ``conftest`` module other tests import)."""
