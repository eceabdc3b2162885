"""Employer's store: placement and six-month-check events per participant (see domain.py)."""

from __future__ import annotations

from services.employer.domain import EmploymentRecord
from services.kernel.source import SourceApplication


class EmployerApplication(SourceApplication):
    service = "employer"
    record_type = EmploymentRecord
