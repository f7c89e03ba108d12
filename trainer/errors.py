"""The error every dataset step raises: its message says what went wrong and what to do."""


class DatasetError(Exception):
    """Getting or reading a dataset failed; str(error) tells the user what to do next."""
