"""Helpers that more than one test folder uses: the small network and its checkpoints
(``tests.support.model``), small videos (``tests.support.videos``) and folders of them
by class (``tests.support.class_folders``), the watcher's verdicts on checkpoints shared
across a run (``tests.support.verdicts``), the test processes' collector
(``tests.support.collector``), torch.hub without a network (``tests.support.offline``)
and loading a folder's helper modules by path (``tests.support.modules``)."""
