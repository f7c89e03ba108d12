"""The read side, a module per read model: jobs with their results (``jobs``), videos
listed and in detail (``videos``), timelines (``timelines``), moments (``moments``),
thumbnails (``thumbnails``), models (``models``) and statistics (``stats``); the filters
they share in ``filters``, and the reading of a job's parts in ``parts``.

Used by ``python -m storage``, the HTML report and the web app. Everything returned is
plain frozen dataclasses, detached from the session, with timezone-aware UTC timestamps.
"""
