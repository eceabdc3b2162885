"""The outcomes service. The rule engine may run compiled (`build.py`): never a stale build."""

from services.outcomes.build import check

check()
