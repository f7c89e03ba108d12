"""``python -m storage report --html DIR``: a static page of recent results.

One card per video (thumbnail strip, timeline strip of segments and shot cuts with the
list of segments, top-3 actions with confidence bars, expert-usage bars, state,
attempts, errors, names, timings), a header with the model and the jobs
by state, and the trainer's evaluation images when its run folder is found.

- ``storage.report.collect``: what the page shows (database + trainer run folder)
- ``storage.report.page``: the HTML, a pure function of the collected data
- ``storage.report.build``: writes the folder (index.html, style.css, thumbs/, figures/)
"""

from storage.report.build import ReportSummary, write_report
from storage.report.collect import DEFAULT_LIMIT, ReportError, ReportFilters

__all__ = ["DEFAULT_LIMIT", "ReportError", "ReportFilters", "ReportSummary", "write_report"]
