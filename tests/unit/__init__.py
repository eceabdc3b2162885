import pytest

# Shared property checks, with pytest's assertion diffs.
pytest.register_assert_rewrite("tests.unit.rule_properties")
