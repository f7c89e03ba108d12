"""Helpers that more than one test folder uses: the small network and its checkpoints
(``tests.support.model``), the watcher's verdicts on them shared across a run
(``tests.support.verdicts``), and loading a folder's helper modules by path
(``tests.support.modules``)."""
